-- Argo CD action discovery for modelyard's ModelDeployment: every action is listed, and enabled
-- only while the operator would act on it (docs/argocd.md). Needs only the base library.
local status = obj.status or {}
local canary = status.canary or {}
local running = canary.state == "Stepping"
local pausedByAction = running and canary.paused == true
local rolledBack = status.rolledBack ~= nil and status.rolledBack.revision ~= nil
  and status.rolledBack.revision ~= ""

local actions = {}
actions["promote"] = {["disabled"] = not running, ["displayName"] = "Promote canary"}
actions["abort"] = {["disabled"] = not running, ["displayName"] = "Abort canary"}
actions["pause"] = {["disabled"] = not running or pausedByAction, ["displayName"] = "Pause canary"}
actions["resume"] = {["disabled"] = not pausedByAction, ["displayName"] = "Resume canary"}
actions["retry"] = {["disabled"] = not rolledBack, ["displayName"] = "Retry rolled back version"}
return actions
