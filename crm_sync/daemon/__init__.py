"""`crm-sync run`: the long-running process around one pipeline context.

`service.Daemon` ties together the `scheduler` (when cycles and polls run), the `webapp` (the
webhook receiver, `/healthz`, `/readyz`, `/metrics`) on the embedded `server`, the write-back
worker, the `fresh_lane` thread and `health` (missed cycles, a store that stops answering).
The scheduler only decides when: each job runs the same pipeline `--once` does.
"""
