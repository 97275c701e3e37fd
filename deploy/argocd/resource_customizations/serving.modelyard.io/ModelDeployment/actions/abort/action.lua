-- Abort the running canary (the stable scales back up, the canary goes): sets the annotation
-- serving.modelyard.io/action, which the operator acts on once and then removes.
-- Refuses, like discovery.lua disables it, when the action does not apply.
local status = obj.status or {}
local canary = status.canary or {}
local applies = canary.state == "Stepping"
if not applies then
  error("abort applies only while a canary steps", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.modelyard.io/action"] = "abort"
return obj
