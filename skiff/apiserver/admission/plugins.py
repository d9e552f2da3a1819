"""The plugins this API server enables, in upstream's recommended order (kube-apiserver
`--enable-admission-plugins` defaults): LimitRanger first, Priority among the mutating ones, and
ResourceQuota last, so quota is charged for the object exactly as every other plugin left it."""

from __future__ import annotations

from skiff.apiserver.admission import Chain, ObjectLookup
from skiff.apiserver.admission.limitranger import LimitRanger
from skiff.apiserver.admission.priority import Priority
from skiff.apiserver.admission.resourcequota import ResourceQuota


def default_chain(lookup: ObjectLookup) -> Chain:
    return Chain([LimitRanger(lookup), Priority(lookup), ResourceQuota(lookup)])
