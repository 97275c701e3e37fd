-- Hold the running canary at its current step until resume: sets the annotation
-- serving.modelyard.io/action, which the operator acts on once and then removes.
-- Refuses, like discovery.lua disables it, when the action does not apply.
local status = obj.status or {}
local canary = status.canary or {}
local applies = canary.state == "Stepping"
applies = applies and canary.paused ~= true
if not applies then
  error("pause applies only while a canary steps and is not paused by the pause action", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.modelyard.io/action"] = "pause"
return obj
