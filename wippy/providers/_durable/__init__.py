"""What the durable providers (``workflow.host``, ``temporal.worker``) share.

Private to wippy's built-in providers; neither provider imports the other, both import
from here:

- :mod:`.options`: start options (``process.with_options``, ``temporal.workflow.*``) and
  activity options (``funcs.new():with_options``), parsed and checked the same way;
- :mod:`.retry`: retry policies (activities, and a workflow's own retries);
- :mod:`.cron`: five-field cron schedules (``cron_schedule``) and their next time;
- :mod:`.commands`: the commands a workflow runs with the ordinary in-memory handlers,
  those it is refused (monitors and links), and the conversions of command arguments
  into recordable data;
- :mod:`.exits`: how a workflow's end reaches the processes linked to it;
- :mod:`.ids`: generated workflow IDs.
"""
