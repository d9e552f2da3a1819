"""The controller manager: every built-in controller over one client and one informer factory."""

from __future__ import annotations

from skiff.client.events import EventBroadcaster
from skiff.client.interface import Client
from skiff.client.workqueue import RateLimitingQueue
from skiff.controllers.base import Controller, ControllerContext, InformerFactory
from skiff.controllers.cronjob import CronJobController
from skiff.controllers.daemonset import DaemonSetController
from skiff.controllers.deployment import DeploymentController
from skiff.controllers.disruption import DisruptionController
from skiff.controllers.endpoints import EndpointsController
from skiff.controllers.endpointslice import EndpointSliceController
from skiff.controllers.garbagecollector import GarbageCollector
from skiff.controllers.job import JobController
from skiff.controllers.namespace import NamespaceController
from skiff.controllers.nodeipam import DEFAULT_CLUSTER_CIDR, NodeIpamController
from skiff.controllers.nodelifecycle import NodeLifecycleController, TaintEvictionController
from skiff.controllers.replicaset import ReplicaSetController, ReplicationManager
from skiff.controllers.resourcequota import ResourceQuotaController
from skiff.controllers.serviceaccount import ServiceAccountsController
from skiff.controllers.statefulset import StatefulSetController


def controllers_for(client: Client, informers: InformerFactory, events: EventBroadcaster | None = None,
                    cluster_cidr: str = DEFAULT_CLUSTER_CIDR) -> list[Controller]:
    """One instance of each controller, sharing the informers and the event writer (upstream
    kube-controller-manager's defaults); node pod CIDRs come from `cluster_cidr`."""
    ctx = ControllerContext(client=client, informers=informers, new_queue=lambda name: RateLimitingQueue(name),
                            events=events)
    kinds: list[type[Controller]] = [
        ReplicaSetController, ReplicationManager, DeploymentController, StatefulSetController,
        DaemonSetController, JobController, CronJobController, GarbageCollector, NamespaceController,
        ServiceAccountsController, EndpointsController, EndpointSliceController, NodeLifecycleController,
        TaintEvictionController, DisruptionController, ResourceQuotaController,
    ]
    return [*(kind(ctx) for kind in kinds), NodeIpamController(ctx, cluster_cidr)]
