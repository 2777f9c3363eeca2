-- authorization.k8s.io/v1 SelfSubjectAccessReview: "may I do this?".
-- moonlet has no RBAC: whoever reached the API (the unix socket's owner,
-- or a client holding the bearer token) may do everything, so every review
-- is answered allowed. `kubectl auth can-i` and tools that probe their
-- permissions before acting (dashboards, Helm) read this. Nothing is
-- stored: create answers the review with its status filled in.
local S = require("moonlet.api.schema")
local review = require("moonlet.api.review")

local Attributes = S.struct("v1.ResourceAttributes", {
  namespace = S.string, verb = S.string, group = S.string, version = S.string, resource = S.string,
  subresource = S.string, name = S.string,
  fieldSelector = S.any, labelSelector = S.any,
})

return {
  group = "authorization.k8s.io", version = "v1", kind = "SelfSubjectAccessReview",
  plural = "selfsubjectaccessreviews", singular = "selfsubjectaccessreview",
  namespaced = false, verbs = { "create" },
  schema = S.kind("SelfSubjectAccessReview", {
    spec = S.struct("v1.SelfSubjectAccessReviewSpec", {
      resourceAttributes = Attributes,
      nonResourceAttributes = S.struct("v1.NonResourceAttributes", { path = S.string, verb = S.string }),
    }),
    status = S.struct("v1.SubjectAccessReviewStatus", {
      allowed = S.boolean, denied = S.boolean, reason = S.string, evaluationError = S.string,
    }),
  }),
  verb_handlers = {
    create = review.handler(function(obj)
      obj.status = { allowed = true, reason = "moonlet has no RBAC: every client that reaches the API may do anything" }
    end),
  },
}
