"""``python -m edge.heart_rate``: the name :mod:`edge.eval.heart_rate` had before the
re-layout moved it under ``edge/eval/``. Commands written down with the old name (issue
reports, field notes) still run, as the same tool: one implementation, two names."""

if __name__ == "__main__":
    import runpy

    runpy.run_module("edge.eval.heart_rate", run_name="__main__", alter_sys=True)
