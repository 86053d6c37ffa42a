"""Config samples in the spirit of Istio's documentation (Bookinfo and friends)."""

BOOKINFO_SERVICES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts:
  - reviews.default.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - number: 9080
    name: http
    protocol: http
  resolution: STATIC
  workloadSelector:
    labels:
      app: reviews
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ratings
spec:
  hosts: [ratings]
  location: MESH_INTERNAL
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  resolution: STATIC
  endpoints:
  - address: 10.0.0.7
    labels: {app: ratings, version: v1}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata:
  name: reviews-v1
spec:
  address: 10.0.0.11
  labels:
    app: reviews
    version: v1
  serviceAccount: bookinfo-reviews
"""

REVIEWS_DR = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: RANDOM
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
  - name: v3
    labels:
      version: v3
"""

REVIEWS_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 75
    - destination:
        host: reviews
        subset: v3
      weight: 25
"""

EXTERNAL = """\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  http:
  - timeout: 3s
    route:
    - destination:
        host: httpbin.org
      weight: 100
"""

MONGO_TCP = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: mongo
  namespace: db
spec:
  hosts: [mongo.db.svc.cluster.local]
  ports:
  - {number: 27017, name: mongo, protocol: MONGO}
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - address: 10.1.0.4
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: mongo
  namespace: db
spec:
  hosts: [mongo]
  tcp:
  - match:
    - port: 27017
    route:
    - destination:
        host: mongo.db
        port:
          number: 27017
"""

ALL = {
    "services.yaml": BOOKINFO_SERVICES,
    "reviews-dr.yaml": REVIEWS_DR,
    "reviews-vs.yaml": REVIEWS_VS,
    "external.yaml": EXTERNAL,
    "mongo.yaml": MONGO_TCP,
}
