-- Roll out the rolled back (or aborted) version again: sets the annotation
-- serving.modelyard.io/action, which the operator acts on once and then removes.
-- Refuses, like discovery.lua disables it, when the action does not apply.
local status = obj.status or {}
local applies = status.rolledBack ~= nil and status.rolledBack.revision ~= nil
  and status.rolledBack.revision ~= ""
if not applies then
  error("retry applies only while status.rolledBack names a rolled back or aborted version", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.modelyard.io/action"] = "retry"
return obj
