-- autoscaling/v1 HorizontalPodAutoscaler: the same stored objects seen
-- through targetCPUUtilizationPercentage (moonlet.api.hpa_convert).
return require("moonlet.api.hpa").def("v1")
