"""Workload, admission and GitOps checks that apply to every provider."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mutguard.checks import Outcome, check, failed, passed, passed_unless_unread, unknown
from mutguard.checks.rbac import none_granted
from mutguard.cluster import Cluster
from mutguard.models import Area, Maturity, Provider, Remediation, Severity, Status
from mutguard.mut import NODE_ANY, Edge, StartKind
from mutguard.rbac import Reach
from mutguard.sources import ADMISSION_DOC, NAMESPACES_DOC, RBAC_DOC, WORKLOADS_DOC
from mutguard.workloads import Workload, node_names, node_tokens, token_edge

ALL_PROVIDERS = tuple(Provider)
POD_SECURITY = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
PSA_LABELS = "https://kubernetes.io/docs/concepts/security/pod-security-admission/"
SECURITY_CONTEXT = "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
SA_TOKENS = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/"
HOST_PATH = "https://kubernetes.io/docs/concepts/storage/volumes/#hostpath"
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# Admission webhooks of the two common policy engines, by configuration name.
POLICY_ENGINES = {"gatekeeper": "OPA Gatekeeper", "kyverno": "Kyverno"}
# Controllers that mark a GitOps operator: (namespace, name prefix) -> operator.
GITOPS_OPERATORS = {
    ("argocd", "argocd-application-controller"): "Argo CD",
    ("flux-system", "kustomize-controller"): "Flux",
    ("flux-system", "helm-controller"): "Flux",
}


def _each_workload(
    cluster: Cluster, judge: Callable[[Workload], Outcome | None], nothing: str | Outcome
) -> Outcome | list[Outcome]:
    """What `judge` says of each workload; `nothing` when it says nothing of any (a text for a
    PASS, or the outcome to give instead)."""
    if cluster.workloads is None:
        return unknown(
            f"workloads not read: {cluster.missing(WORKLOADS_DOC)}",
            assumption="workloads: not read; assumed a compromised pod holds one ordinary "
            "service-account token and cannot reach its node",
            affects=[StartKind.WORKLOAD],
        )
    found = [o for w in cluster.workloads.items if (o := judge(w)) is not None]
    if found:
        return found
    outcome = passed(nothing) if isinstance(nothing, str) else nothing
    if outcome.status is not Status.PASS:
        return outcome
    unread = len(cluster.workloads.unread)
    return passed_unless_unread(outcome.detail, unread, WORKLOADS_DOC, "workloads.unread_objects")


def _escape_edges(workload: Workload, why: str) -> list[Edge]:
    return [
        Edge(workload.node, node, 0, "escape", f"{workload}: {why}")
        for node in node_names(workload)
    ]


ENFORCE_BASELINE = f"kubectl label ns NS {ENFORCE_LABEL}=baseline"
# What a workload runs is in the manifests that deploy it, not in the cluster's cloud resource.
IN_MANIFESTS = (
    "None on the cluster's resource: the fix goes into the manifests or charts that deploy to "
    "the cluster"
)


def _remediation(summary: str, cli: str | None = None) -> dict[Provider, Remediation]:
    """The same fix on every provider, made in the manifests (`cli`: a command that helps)."""
    fix = Remediation(summary=summary, cli=cli, terraform=IN_MANIFESTS)
    return dict.fromkeys(ALL_PROVIDERS, fix)


EVERY_OBJECT_READ = "every object was read"


@check(
    id="workloads.unread_objects",
    title="Every object in workloads.json can be read",
    severity=Severity.MEDIUM,
    area=Area.WORKLOADS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="An API server validates every object it stores, so a pod or controller with a "
    "field of the wrong type was edited after collection or comes from a broken collector. It "
    "is skipped alone, but what it runs is then unknown: the workload checks cannot pass and the "
    "compromised-pod MUT is only an upper bound until it is read.",
    remediation=dict.fromkeys(
        ALL_PROVIDERS,
        Remediation(
            summary="Collect workloads.json again from the cluster, unedited, with "
            "`mutguard snapshot` or kubectl.",
            cli="kubectl get pods,serviceaccounts,deployments,daemonsets,statefulsets,"
            "replicasets,jobs,cronjobs -A -o json",
        ),
    ),
    references=[POD_SECURITY],
    pass_detail=EVERY_OBJECT_READ,
)
def unread_objects(cluster: Cluster):
    if cluster.workloads is None:
        return unknown(f"workloads not read: {cluster.missing(WORKLOADS_DOC)}")
    return [
        unknown(
            f"{WORKLOADS_DOC}: {reason}: skipped, so what it runs is not judged",
            assumption="workloads: an object that could not be read is assumed to run nothing "
            "dangerous",
            affects=[StartKind.WORKLOAD],
        )
        for reason in cluster.workloads.unread
    ] or passed(EVERY_OBJECT_READ)


NO_NODE_ESCAPE = "no workload runs privileged or mounts the node"


@check(
    id="workloads.node_escape",
    title="No workload can take over its node",
    severity=Severity.HIGH,
    area=Area.WORKLOADS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="A privileged container, a hostPath onto the node's root, configuration, runtime "
    "socket or kubelet directory (or onto a directory that holds one, such as /var or /run), or "
    "an escape capability makes the pod's compromise root on its node, with every token of every "
    "pod there. A runtime socket does so even mounted read-only: connecting needs no write access.",
    remediation=_remediation(
        "Drop `privileged: true`, sensitive hostPath volumes and added SYS_ADMIN-like capabilities "
        "from the pod spec; enforce the baseline Pod Security Standard on the namespace.",
        ENFORCE_BASELINE,
    ),
    references=[
        POD_SECURITY,
        SECURITY_CONTEXT,
        HOST_PATH,
        "https://github.com/Shopify/kubeaudit/blob/main/docs/auditors/mounts.md",
        "https://amf3.github.io/articles/virtualization/docker_socket",
    ],
    pass_detail=NO_NODE_ESCAPE,
)
def node_escape(cluster: Cluster):
    def judge(workload: Workload):
        reasons = workload.escapes()
        if reasons:
            why = "; ".join(reasons)
            return failed(f"{workload}: {why}", str(workload), edges=_escape_edges(workload, why))
        if unjudged := workload.unjudged_host_paths():
            return unknown(
                f"{workload}: {'; '.join(unjudged)}",
                str(workload),
                assumption=f"{workload}: its invalid hostPath assumed to mount nothing",
                affects=[StartKind.WORKLOAD],
            )
        return None

    return _each_workload(cluster, judge, NO_NODE_ESCAPE)


NO_NODE_CREDENTIALS_MOUNTED = "no workload mounts its node's credentials"


@check(
    id="workloads.host_path_tokens",
    title="No workload reads its node's credentials through a hostPath",
    severity=Severity.HIGH,
    area=Area.WORKLOADS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="A hostPath onto /var/lib/kubelet/pods (or a directory that holds it) hands the pod "
    "the service-account token of every pod on its node, even read-only; one onto the kubelet's "
    "credentials lets it act as the node, which reads the same tokens. Whoever exploits the app "
    "then holds the most powerful of them.",
    remediation=_remediation(
        "Remove the hostPath volume, or mount only the subdirectory the app needs (node agents "
        "rarely need more than /var/log/pods read-only); enforce the baseline Pod Security "
        "Standard on the namespace, which forbids hostPath volumes.",
        ENFORCE_BASELINE,
    ),
    references=[POD_SECURITY, HOST_PATH, "https://avd.aquasec.com/misconfig/kubernetes/khv047"],
    pass_detail=NO_NODE_CREDENTIALS_MOUNTED,
)
def host_path_tokens(cluster: Cluster):
    def judge(workload: Workload):
        reasons = workload.token_reads()
        if not reasons:
            return None
        why = "; ".join(reasons)
        edges = [
            Edge(workload.node, node_tokens(node), 0, "credential", f"{workload}: {why}")
            for node in node_names(workload)
        ]
        return failed(f"{workload}: {why}", str(workload), edges=edges)

    return _each_workload(cluster, judge, NO_NODE_CREDENTIALS_MOUNTED)


NO_HOST_NAMESPACES = "no workload shares a node namespace"


@check(
    id="workloads.host_namespaces",
    title="Workloads do not share the node's PID, IPC or network namespace",
    severity=Severity.MEDIUM,
    area=Area.WORKLOADS,
    maturity=Maturity.WALK,
    providers=ALL_PROVIDERS,
    rationale="hostPID sees and signals every process on the node, hostIPC its shared memory, "
    "hostNetwork every node-local service and the cloud metadata endpoint.",
    remediation=_remediation("Remove hostPID, hostIPC and hostNetwork from the pod spec."),
    references=[POD_SECURITY],
    pass_detail=NO_HOST_NAMESPACES,
)
def host_namespaces(cluster: Cluster):
    def judge(workload: Workload):
        shared = [
            name
            for name, on in (
                ("hostPID", workload.host_pid),
                ("hostIPC", workload.host_ipc),
                ("hostNetwork", workload.host_network),
            )
            if on
        ]
        return failed(f"{workload} uses {', '.join(shared)}", str(workload)) if shared else None

    return _each_workload(cluster, judge, NO_HOST_NAMESPACES)


# Capabilities the baseline Pod Security Standard lets a container add.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


NO_ADDED_CAPABILITIES = "no container adds a capability beyond the baseline"


@check(
    id="workloads.capabilities",
    title="Containers add no capability beyond the baseline Pod Security Standard",
    severity=Severity.MEDIUM,
    area=Area.WORKLOADS,
    maturity=Maturity.WALK,
    providers=ALL_PROVIDERS,
    rationale="Capabilities such as NET_ADMIN, NET_RAW or SYS_PTRACE widen what a compromised "
    "container can do to its node and its neighbours; those that escape outright are counted "
    "by workloads.node_escape.",
    remediation=_remediation(
        "Drop the capability from `securityContext.capabilities.add` (and `drop: [ALL]`); "
        "enforce the baseline Pod Security Standard on the namespace.",
        ENFORCE_BASELINE,
    ),
    references=[POD_SECURITY, SECURITY_CONTEXT],
    pass_detail=NO_ADDED_CAPABILITIES,
)
def capabilities(cluster: Cluster):
    def judge(workload: Workload):
        added = [
            f"{c.name}: {', '.join(sorted(c.added_capabilities - BASELINE_CAPABILITIES))}"
            for c in workload.containers
            if c.added_capabilities - BASELINE_CAPABILITIES
        ]
        return failed(f"{workload} adds {'; '.join(added)}", str(workload)) if added else None

    return _each_workload(cluster, judge, NO_ADDED_CAPABILITIES)


NO_POWERFUL_ACCOUNT_MOUNTED = "no pod mounts the token of a powerful service account"


@check(
    id="workloads.token_automount",
    title="Tokens of powerful service accounts are not mounted into pods",
    severity=Severity.CRITICAL,
    area=Area.WORKLOADS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="A pod that mounts the token of a service account with dangerous RBAC hands that "
    "power to whoever exploits its app: a default token with cluster-admin is cluster-admin "
    "for every bug in the app.",
    remediation=_remediation(
        "Set `automountServiceAccountToken: false` where the app does not call the API, give the "
        "app a service account of its own with only what it needs, and remove the broad binding."
    ),
    references=[SA_TOKENS],
    pass_detail=NO_POWERFUL_ACCOUNT_MOUNTED,
)
def token_automount(cluster: Cluster):
    if cluster.rbac is None:
        return unknown(f"RBAC not read: {cluster.missing(RBAC_DOC)}")
    powerful = cluster.rbac.powerful_service_accounts()

    def judge(workload: Workload):
        if not workload.automount_token or workload.service_account_node not in powerful:
            return None
        powers = sorted(
            {
                g.power.what
                for g in cluster.rbac.grants()
                if g.subject.kind == "ServiceAccount"
                and (g.subject.namespace, g.subject.name)
                == (workload.namespace, workload.service_account)
                and g.power.reach is not Reach.NONE
            }
        )
        return failed(
            f"{workload} mounts the token of {workload.service_account}, which can "
            f"{'; '.join(powers)}",
            str(workload),
            edges=[token_edge(workload)],
        )

    return _each_workload(
        cluster,
        judge,
        none_granted(cluster, NO_POWERFUL_ACCOUNT_MOUNTED),
    )


NO_PRIVILEGE_ESCALATION = "every container sets allowPrivilegeEscalation: false"


@check(
    id="workloads.privilege_escalation",
    title="Containers cannot gain privileges",
    severity=Severity.LOW,
    area=Area.WORKLOADS,
    maturity=Maturity.RUN,
    providers=ALL_PROVIDERS,
    rationale="Unless allowPrivilegeEscalation is false, a setuid binary in the image can make "
    "its process more privileged than the container started it.",
    remediation=_remediation(
        "Set `securityContext.allowPrivilegeEscalation: false` on each container."
    ),
    references=[SECURITY_CONTEXT],
    pass_detail=NO_PRIVILEGE_ESCALATION,
)
def privilege_escalation(cluster: Cluster):
    def judge(workload: Workload):
        open_ = [c.name for c in workload.containers if c.allow_privilege_escalation is not False]
        if open_:
            return failed(f"{workload}: {', '.join(open_)} may escalate", str(workload))
        return None

    return _each_workload(cluster, judge, NO_PRIVILEGE_ESCALATION)


NO_ROOT = "every container runs as a non-root user"


@check(
    id="workloads.run_as_root",
    title="Containers do not run as root",
    severity=Severity.LOW,
    area=Area.WORKLOADS,
    maturity=Maturity.RUN,
    providers=ALL_PROVIDERS,
    rationale="Root in a container is one kernel or runtime bug from root on the node.",
    remediation=_remediation("Set `runAsNonRoot: true` and a non-zero `runAsUser`."),
    references=[SECURITY_CONTEXT],
    pass_detail=NO_ROOT,
)
def run_as_root(cluster: Cluster):
    def judge(workload: Workload):
        root = [c.name for c in workload.containers if c.runs_as_root]
        return (
            failed(f"{workload}: {', '.join(root)} may run as root", str(workload))
            if root
            else None
        )

    return _each_workload(cluster, judge, NO_ROOT)


NO_LITERAL_SECRETS = "no env value looks like a literal secret"


@check(
    id="workloads.secret_env",
    title="No secret is written into a pod spec",
    severity=Severity.MEDIUM,
    area=Area.WORKLOADS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="A secret in an env value is readable by everyone who can read the workload, is in "
    "every manifest and backup, and cannot be rotated without a redeploy. Literal values are "
    "judged by their name (PASSWORD, TOKEN, SECRET, API_KEY ...) and by their shape (AWS, GitHub, "
    "GitLab, Slack, Stripe and Google keys, JWTs, PEM private keys, passwords in URLs, long "
    "random strings), in every container of every pod template.",
    remediation=_remediation(
        "Move the value into a Secret (or an external secret store) and reference it with "
        "`valueFrom.secretKeyRef`."
    ),
    references=["https://kubernetes.io/docs/concepts/configuration/secret/"],
    pass_detail=NO_LITERAL_SECRETS,
)
def secret_env(cluster: Cluster):
    def judge(workload: Workload):
        # Only the variable names and the detector: the values never leave the documents.
        names = [
            f"{c.name}:{s.variable} ({s.why})" for c in workload.containers for s in c.secret_env
        ]
        if names:
            return failed(f"{workload} sets literal secrets in {', '.join(names)}", str(workload))
        return None

    return _each_workload(cluster, judge, NO_LITERAL_SECRETS)


EVERY_NAMESPACE_ENFORCES = "every namespace enforces baseline or restricted"


@check(
    id="workloads.pod_security",
    title="Namespaces enforce a Pod Security Standard",
    severity=Severity.MEDIUM,
    area=Area.WORKLOADS,
    maturity=Maturity.WALK,
    providers=ALL_PROVIDERS,
    rationale="Without `pod-security.kubernetes.io/enforce` at baseline or restricted, anyone who "
    "can create a pod in the namespace can create a privileged one, and own a node.",
    remediation=_remediation(
        "Enforce the baseline Pod Security Standard on the namespace (restricted where the "
        "workloads allow it), or enforce the same with Gatekeeper or Kyverno policies.",
        ENFORCE_BASELINE,
    ),
    references=[PSA_LABELS, POD_SECURITY],
    pass_detail=EVERY_NAMESPACE_ENFORCES,
)
def pod_security(cluster: Cluster):
    if cluster.namespaces is None:
        return unknown(f"namespaces not read: {cluster.missing(NAMESPACES_DOC)}")
    outcomes = []
    for name, labels in sorted(cluster.namespaces.items()):
        if name in SYSTEM_NAMESPACES:
            continue
        level = labels.get(ENFORCE_LABEL)
        if level in ("baseline", "restricted"):
            continue
        why = f"namespace {name} enforces {level or 'no'} Pod Security level"
        edge = Edge(
            f"namespace:{name}", NODE_ANY, 0, "escape", f"{why}: a privileged pod takes a node"
        )
        outcomes.append(failed(why, f"namespace {name}", edges=[edge]))
    return outcomes or passed(EVERY_NAMESPACE_ENFORCES)


def _policy_engines(webhooks: Iterable[str]) -> set[str]:
    return {engine for key, engine in POLICY_ENGINES.items() for w in webhooks if key in w.lower()}


@check(
    id="workloads.policy_engine",
    title="An admission policy engine enforces workload rules",
    severity=Severity.LOW,
    area=Area.WORKLOADS,
    maturity=Maturity.RUN,
    providers=ALL_PROVIDERS,
    rationale="Gatekeeper or Kyverno enforce what Pod Security Standards cannot: allowed "
    "registries, required labels, forbidden bindings.",
    remediation=_remediation("Install OPA Gatekeeper or Kyverno with enforcing policies."),
    references=[
        "https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/"
    ],
)
def policy_engine(cluster: Cluster):
    if cluster.admission_webhooks is None:
        return unknown(f"admission webhooks not read: {cluster.missing(ADMISSION_DOC)}")
    engines = _policy_engines(cluster.admission_webhooks)
    if engines:
        return passed(f"{', '.join(sorted(engines))} admission webhooks are installed")
    return failed("no Gatekeeper or Kyverno admission webhook is installed")


def _gitops_operators(cluster: Cluster) -> set[str]:
    return {
        operator
        for w in cluster.workloads.items
        for (namespace, prefix), operator in GITOPS_OPERATORS.items()
        if w.namespace == namespace and w.name.startswith(prefix)
    }


@check(
    id="gitops.operator",
    title="Changes reach the cluster through a GitOps operator",
    severity=Severity.LOW,
    area=Area.GITOPS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="With Argo CD or Flux applying reviewed commits, a bad binding or manifest has to "
    "pass review first, and drift is put back.",
    remediation=_remediation("Deploy through Argo CD or Flux from a reviewed Git repository."),
    references=["https://opengitops.dev/", "https://argo-cd.readthedocs.io/", "https://fluxcd.io/"],
)
def gitops_operator(cluster: Cluster):
    if cluster.workloads is None:
        return unknown(f"workloads not read: {cluster.missing(WORKLOADS_DOC)}")
    operators = _gitops_operators(cluster)
    if operators:
        return passed(f"{', '.join(sorted(operators))} runs in the cluster")
    return failed("no Argo CD or Flux controller runs in the cluster")


@check(
    id="gitops.human_write",
    title="People do not deploy around the GitOps operator",
    severity=Severity.MEDIUM,
    area=Area.GITOPS,
    maturity=Maturity.WALK,
    providers=ALL_PROVIDERS,
    rationale="While people keep bindings that create workloads, a change can skip review: "
    "GitOps is then a habit, not a barrier.",
    remediation=_remediation(
        "Give people read-only roles (view) and break-glass access, and let only the operator's "
        "service account write workloads."
    ),
    references=["https://opengitops.dev/"],
)
def gitops_human_write(cluster: Cluster):
    if cluster.workloads is None or cluster.rbac is None:
        return unknown("workloads and RBAC are both needed")
    if not _gitops_operators(cluster):
        return None  # gitops.operator reports the missing operator
    humans = [
        g
        for g in cluster.rbac.grants()
        if g.subject.kind in ("User", "Group")
        and g.power.kind == "rbac.workload_create"
        and not g.platform
    ]
    outcomes = [
        failed(f"{g.subject} can {g.power.what} through {g.binding}", str(g.binding))
        for g in humans
    ]
    return outcomes or none_granted(cluster, "only service accounts create workloads")
