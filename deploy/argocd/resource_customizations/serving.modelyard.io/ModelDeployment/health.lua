-- Argo CD health check for modelyard's ModelDeployment (serving.modelyard.io/v1alpha1).
-- Reads only what the operator reports in status: observedGeneration, phase, conditions, the
-- canary's step and weight, and rolledBack. Written for the restricted sandbox of argocd-cm
-- scripts (base and table libraries only; no string, no math), so it needs no useOpenLibs.
-- Never returns Missing: the object exists, and an object without status is waiting for the
-- operator, which Argo CD calls Progressing.

local function present(value)
  return value ~= nil and value ~= ""
end

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- "Reason: message", or whichever of the two is set.
local function describe(c)
  if c == nil then
    return ""
  end
  if present(c.reason) and present(c.message) then
    return c.reason .. ": " .. c.message
  end
  if present(c.reason) then
    return c.reason
  end
  if present(c.message) then
    return c.message
  end
  return ""
end

local function withDetail(text, detail)
  if present(detail) then
    return text .. ": " .. detail
  end
  return text
end

local function versionOf(track)
  if track ~= nil and present(track.version) then
    return track.version
  end
  if track ~= nil and present(track.revision) then
    return "revision " .. track.revision
  end
  return nil
end

local function specVersion()
  if obj.spec ~= nil and obj.spec.model ~= nil and present(obj.spec.model.version) then
    return obj.spec.model.version
  end
  return "the new version"
end

-- "step 1/2, 10% of traffic (25% achieved)": the step's weight and, when the replica split
-- cannot match it exactly, the share the canary actually gets.
local function position(canary)
  local text = ""
  local step = tonumber(canary.step)
  local steps = tonumber(canary.steps)
  local wanted = tonumber(canary.desiredWeight)
  local actual = tonumber(canary.weight)
  if step ~= nil and steps ~= nil then
    text = "step " .. step .. "/" .. steps .. ", "
  elseif step ~= nil then
    text = "step " .. step .. ", "
  end
  if wanted ~= nil then
    text = text .. wanted .. "% of traffic"
    if actual ~= nil and actual ~= wanted then
      text = text .. " (" .. actual .. "% achieved)"
    end
  elseif actual ~= nil then
    text = text .. actual .. "% of traffic"
  end
  return text
end

local function failedChecks(canary)
  local failed = tonumber(canary.failedChecks)
  if failed == nil or failed <= 0 then
    return ""
  end
  if failed == 1 then
    return "; 1 failed analysis check"
  end
  return "; " .. failed .. " failed analysis checks"
end

local function canaryRunning(status)
  return status.canary ~= nil and present(status.canary.revision)
end

local function rolledBack(status)
  return status.rolledBack ~= nil and present(status.rolledBack.revision)
end

local function rollbackSummary(status, ongoing)
  local rb = status.rolledBack or {}
  if ongoing then
    -- While rolling back, the canary says how the rollout ends and why.
    local c = status.canary or {}
    rb = {version = c.version, result = c.ending, reason = c.reason}
  end
  local version = versionOf(rb) or versionOf(status.canary) or "the canary"
  local verb = "Rolled back "
  if rb.result == "Aborted" then
    verb = "Aborted "
  end
  if ongoing then
    verb = "Rolling back canary "
    if rb.result == "Aborted" then
      verb = "Aborting canary "
    end
  end
  local reason = rb.reason
  if not present(reason) then
    reason = (condition(status, "Progressing") or {}).message
  end
  local text = withDetail(verb .. version, reason)
  local stable = versionOf(status.stable)
  if not ongoing and stable ~= nil then
    text = text .. "; " .. stable .. " serves"
  end
  return text
end

local function pausedBy(status)
  local bySpec = obj.spec ~= nil and obj.spec.rollout ~= nil and obj.spec.rollout.paused == true
  local byAction = status.canary ~= nil and status.canary.paused == true
  if bySpec and byAction then
    return " by spec.rollout.paused and the pause action"
  end
  if bySpec then
    return " by spec.rollout.paused"
  end
  if byAction then
    return " by the pause action"
  end
  return ""
end

-- The condition that says what is wrong: Degraded when True, else Ready or ModelVerified when False.
local function failing(status)
  local degraded = condition(status, "Degraded")
  if degraded ~= nil and degraded.status == "True" then
    return describe(degraded)
  end
  for _, kind in ipairs({"Ready", "ModelVerified"}) do
    local c = condition(status, kind)
    if c ~= nil and c.status == "False" then
      return describe(c)
    end
  end
  return ""
end

local hs = {}
local status = obj.status
if status == nil or next(status) == nil or not present(status.phase) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = tonumber(obj.metadata.generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local phase = status.phase
if phase == "Ready" then
  local ready = condition(status, "Ready")
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
    hs.message = withDetail("Serving " .. (versionOf(status.stable) or specVersion()), ready.message)
  else
    hs.status = "Progressing"
    hs.message = withDetail("Waiting for the Ready condition", describe(ready))
  end
elseif phase == "Paused" then
  hs.status = "Suspended"
  if canaryRunning(status) then
    local where = position(status.canary)
    if where ~= "" then
      where = " at " .. where
    end
    hs.message = "Canary " .. versionOf(status.canary) .. " paused" .. pausedBy(status) .. where
  else
    hs.message = "Rollout of " .. specVersion() .. " paused" .. pausedBy(status) .. " before its first step"
  end
elseif phase == "Progressing" then
  hs.status = "Progressing"
  local progressing = condition(status, "Progressing") or {}
  if canaryRunning(status) and progressing.reason == "Promoting" then
    hs.message = withDetail("Promoting canary " .. versionOf(status.canary) .. " to stable", progressing.message)
  elseif canaryRunning(status) then
    local where = position(status.canary)
    if where ~= "" then
      where = " at " .. where
    end
    hs.message = "Canary " .. versionOf(status.canary) .. where .. failedChecks(status.canary)
  else
    hs.message = withDetail("Rolling out " .. specVersion(), progressing.message)
  end
elseif phase == "Pending" then
  hs.status = "Progressing"
  hs.message = withDetail("Pending", (condition(status, "Progressing") or {}).message)
elseif phase == "RollingBack" then
  hs.status = "Progressing"
  hs.message = rollbackSummary(status, true)
elseif phase == "Degraded" and rolledBack(status) then
  hs.status = "Degraded"
  hs.message = rollbackSummary(status, false)
elseif phase == "Degraded" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = withDetail(phase, failing(status))
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase
end
return hs
