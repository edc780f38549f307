"""The accuracy harness (``python -m edge.eval``, ``make eval``): what the unit stores, replayed
through the whole pipeline (:mod:`.product`), and our detector against its peers on simulated
nights and real recordings (:mod:`.harness`)."""
