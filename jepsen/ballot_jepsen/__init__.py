"""ballot's fault-injection suite: clients, generators, nemeses, histories,
checkers and reports, on Jepsen's model (docs/jepsen.md)."""
