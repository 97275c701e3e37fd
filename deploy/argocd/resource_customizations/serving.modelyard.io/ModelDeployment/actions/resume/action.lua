-- Continue a canary held by the pause action (spec.rollout.paused is changed in Git instead):
-- sets the annotation serving.modelyard.io/action, which the operator acts on once and removes.
-- Refuses, like discovery.lua disables it, when the action does not apply.
local status = obj.status or {}
local applies = status.canary ~= nil and status.canary.state == "Stepping"
  and status.canary.paused == true
if not applies then
  error("resume applies only while the canary is paused by the pause action", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.modelyard.io/action"] = "resume"
return obj
