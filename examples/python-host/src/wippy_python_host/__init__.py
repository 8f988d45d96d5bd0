"""``python.host``: Wippy actors written as Python async functions.

Declare a host and actors in YAML::

    - name: py
      kind: python.host
      lifecycle: {auto_start: true}
    - name: greeter
      kind: python.actor
      handler: myapp.actors:greeter

and write the handler::

    async def greeter(actor, greeting):
        while True:
            msg = await actor.receive()
            actor.send(msg.sender, "greeting", f"{greeting}, {msg.payload}!")

Lua processes spawn it with ``process.spawn("app:greeter", "app:py", "Hello")`` and talk
to it like to any process: messages, monitors, links, cancel, terminate and names.
"""

from wippy_python_host._actor import CANCEL, EXIT, LINK_DOWN, Actor, Event, Handler, Message
from wippy_python_host._host import ACTOR_SPEC, HOST_SPEC, SPECS, PythonHost, load_handler

__all__ = [
    "ACTOR_SPEC",
    "CANCEL",
    "EXIT",
    "HOST_SPEC",
    "LINK_DOWN",
    "SPECS",
    "Actor",
    "Event",
    "Handler",
    "Message",
    "PythonHost",
    "load_handler",
]
__version__ = "0.1.0"
