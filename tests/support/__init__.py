"""Test aids shared by the whole suite: the one FakeClock, harnesses, set-ups written once."""
