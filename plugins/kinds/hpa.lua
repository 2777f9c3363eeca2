-- autoscaling/v2 HorizontalPodAutoscaler: the stored and preferred
-- version (moonlet.api.hpa); plugins/controllers/hpa.lua acts on it.
return require("moonlet.api.hpa").def("v2")
