"""Quality: review by exception and release.

- ``rules``: the versioned, QA-approved exception rules (category -> severity, signatures,
  blocks release, deviation, auto-close);
- ``exceptions``: raising an exception from any source (``raise_in``), reading them;
- ``dispositions``: QA's e-signed accept / escalate, closure when the deviation closes;
- ``release``: what blocks a release, and the e-signed release or rejection;
- ``processes``: QA's BPMN flows about a batch, an exception or a recipe version.
"""
