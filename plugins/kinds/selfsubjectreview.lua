-- authentication.k8s.io/v1 SelfSubjectReview: "who am I?" (`kubectl auth
-- whoami`). moonlet knows one identity: the owner of the data directory,
-- through the unix socket or the bearer token, with every permission.
-- Nothing is stored: create answers with status.userInfo.
local S = require("moonlet.api.schema")
local review = require("moonlet.api.review")

return {
  group = "authentication.k8s.io", version = "v1", kind = "SelfSubjectReview",
  plural = "selfsubjectreviews", singular = "selfsubjectreview",
  namespaced = false, verbs = { "create" },
  schema = S.kind("SelfSubjectReview", {
    status = S.struct("v1.SelfSubjectReviewStatus", {
      userInfo = S.struct("v1.UserInfo", {
        username = S.string, uid = S.string, groups = S.list(S.string), extra = S.any,
      }),
    }),
  }),
  verb_handlers = {
    create = review.handler(function(obj)
      obj.status = { userInfo = { username = "moonlet-admin", groups = { "system:masters", "system:authenticated" } } }
    end),
  },
}
