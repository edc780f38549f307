"""The link's command names: the one table, for the agent, its handler modules and the host.

A request's header is ``{"cmd": NAME, "args": {...}}``; :class:`Command` lists every name a
unit answers (a ``str``: it goes into the JSON header as it is, and compares equal to the
name that comes off the wire). What each one takes and answers is documented where it is
served: the built-ins in :mod:`edge.maint.agent`, flashing, slots and the release key in
:mod:`edge.maint.flash`, log pages in :mod:`edge.maint.logs`.
"""

from __future__ import annotations

import enum

__all__ = ["PUBLIC", "Command"]


class Command(enum.StrEnum):
    """Every command of the link, by its name on the wire."""

    # negotiation, identity and login (edge.maint.agent)
    HELLO = "hello"
    IDENTIFY = "identify"
    AUTH_CHALLENGE = "auth.challenge"
    AUTH_RESPONSE = "auth.response"
    KEYS_AUTHORIZE = "keys.authorize"
    LOGS_SUBSCRIBE = "logs.subscribe"
    PING = "ping"
    # flashing, the A/B slots and the release key bundles are checked with (edge.maint.flash)
    FLASH_BEGIN = "flash.begin"
    FLASH_CHUNK = "flash.chunk"
    FLASH_STATUS = "flash.status"
    FLASH_FINISH = "flash.finish"
    SLOTS_STATUS = "slots.status"
    SLOTS_ROLLBACK = "slots.rollback"
    SLOTS_BOOT = "slots.boot"
    RELEASE_KEY = "keys.release"
    # the unit's records and log files, in pages (edge.maint.logs)
    LOGS_SESSIONS = "logs.sessions"
    LOGS_EPOCHS = "logs.epochs"
    LOGS_EVENTS = "logs.events"
    LOGS_FILES = "logs.files"
    LOGS_READ = "logs.read"


#: The commands a unit answers before the host authenticates: negotiation, identification,
#: the login itself and pairing. Every other one needs an authenticated host (E320).
PUBLIC = frozenset(
    {
        Command.HELLO,
        Command.IDENTIFY,
        Command.AUTH_CHALLENGE,
        Command.AUTH_RESPONSE,
        Command.KEYS_AUTHORIZE,
    }
)
