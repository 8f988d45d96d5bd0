"""``process`` is a global: no ``modules:`` line needed. Its commands are in
:mod:`wippy.actors.commands.process`."""

GLOBAL = True
