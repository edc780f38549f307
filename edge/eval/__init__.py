"""The accuracy harness: our detector and its peers scored on simulated nights and real
recordings (``python -m edge.eval``)."""
