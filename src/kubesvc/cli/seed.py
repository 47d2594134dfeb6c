"""The seed document's two Service manifests, verbatim (comments included).

``kubesvc demo`` applies them as written, and the tests check that they work
as written; keeping them here means there is one copy of the seed.
"""

SEED_TEMPLATE = """\
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  type: ClusterIP            # 1
  clusterIP: 10.0.10.10      # 2
  selector:                  # 3
    app: MyApp
  ports:                     # 4
  - protocol: TCP
    port: 80
    targetPort: 9376
"""

SEED_CLUSTERIP = """\
apiVersion: v1
kind: Service
metadata:
  name: clusterip-service
spec:
  type: ClusterIP
  selector:
    app: nginx-for-svc
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
"""
