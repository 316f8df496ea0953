"""Hand-made histories for the checker tests."""


class H:
    """Operations given as intervals; ops() sorts their invoke and
    completion events by time, as a real run records them."""

    def __init__(self):
        self.events = []
        self.n = 0

    def op(self, process, f, value, start, end=None, type_="ok", out="same"):
        """One operation from time @start to @end (None: never completed)."""
        self.n += 1
        self.events.append((start, 0, self.n, {"type": "invoke", "f": f, "value": value,
                                               "process": process}))
        if end is not None:
            self.events.append((end, 1, self.n, {"type": type_, "f": f,
                                                 "value": value if out == "same" else out,
                                                 "process": process}))
        return self

    def ops(self):
        out = []
        for t, _, _, e in sorted(self.events, key=lambda x: (x[0], x[1], x[2])):
            e = dict(e, time=int(t * 1000), index=len(out))
            out.append(e)
        return out
