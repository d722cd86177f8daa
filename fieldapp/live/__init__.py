"""The live channel: one event reader per process fanning out to every open stream.

items.py maps an event to what each stream receives; hub.py holds the open streams and fans
out; reader.py is the one reader (LISTEN/NOTIFY or a poll); stream.py is the SSE response.
"""

from fieldapp.live.hub import get as get_hub
from fieldapp.live.stream import response

__all__ = ["get_hub", "response"]
