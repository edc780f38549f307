"""The unit's maintenance side: what keeps its software up to date and its logs reachable,
apart from recording the nights.

:mod:`.agent` (``bedside agent``) serves authenticated hosts over the link
(:mod:`edge.link`), with :mod:`.flash` (resumable upload, install into a slot, rollback) and
:mod:`.logs` (the store's rows and log files, in pages) as its command modules;
:mod:`.bundle` is the signed software bundle, :mod:`.slots` the A/B slots, and :mod:`.boot`
(``bedside boot``) the boot manager: trial boot, health check, confirm or roll back.
"""
