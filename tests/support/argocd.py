"""Which actions each Argo CD testdata state enables: the table the Lua discovery is held to
(tests/integration/test_argocd_lua.py) and that the operator's own rule (``api.actions.why_not``)
is held to (tests/contract/test_argocd_testdata.py), so the two cannot drift apart."""

from __future__ import annotations

VERBS = ("abort", "pause", "promote", "resume", "retry")
CANARY_CONTROLS = {"promote", "abort", "pause"}
# What each state allows (design §6.1): promote/abort/pause while a canary steps (pause not
# twice), resume while it is paused by the pause action, retry while status.rolledBack is set.
ENABLED: dict[str, set[str]] = {
    "progressing_noStatus": set(),
    "progressing_emptyStatus": set(),
    "progressing_staleGeneration": set(),
    "progressing_pending": set(),
    "progressing_firstRollout": set(),
    "progressing_canaryStep": CANARY_CONTROLS,
    "progressing_canaryFailedCheck": CANARY_CONTROLS,
    "progressing_promoting": set(),
    "progressing_rollingBack": set(),
    "progressing_readyConditionUnknown": set(),
    "suspended_pausedBySpec": CANARY_CONTROLS,
    "suspended_pausedByAction": {"promote", "abort", "resume"},
    "suspended_pausedBeforeFirstStep": set(),
    "healthy_ready": set(),
    "degraded_rolledBack": {"retry"},
    "degraded_aborted": {"retry"},
    "degraded_failedDigestMismatch": set(),
    "degraded_podsFailing": set(),
    "unknown_unknownPhase": set(),
}
