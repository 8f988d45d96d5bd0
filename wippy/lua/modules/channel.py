"""The ``channel`` global; its commands live in :mod:`wippy.actors.channel`."""

GLOBAL = True
