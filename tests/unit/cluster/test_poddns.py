"""The kubelet's pod DNS rules, as tables taken from the kubelet's own tests
(kubernetes/kubernetes pkg/kubelet/network/dns/dns_test.go: TestParseResolvConf,
TestFormDNSSearchFitsLimits, TestFormDNSNameserversFitsLimits, TestMergeDNSOptions,
TestGetPodDNSType, TestGetPodDNS, TestGetPodDNSCustom)."""

from __future__ import annotations

import pytest

from kdns.cluster import poddns
from kdns.cluster.poddns import (
    CLUSTER_FIRST,
    CLUSTER_FIRST_WITH_HOST_NET,
    DEFAULT,
    NONE,
    DNSConfig,
    Kubelet,
    NodeResolvConf,
    PodDNS,
)

# TestParseResolvConf: (data, nameservers, searches, options), or None for an error.
PARSE_CASES: list[tuple[str, tuple[list[str], list[str], list[str]] | None]] = [
    ("", ([], [], [])),
    (" ", ([], [], [])),
    ("\n", ([], [], [])),
    ("\t\n\t", ([], [], [])),
    ("#comment\n", ([], [], [])),
    (" #comment\n", ([], [], [])),
    ("#comment\n#comment", ([], [], [])),
    ("#comment\nnameserver", None),
    ("#comment\nnameserver\nsearch", None),
    ("#comment\nnameserver 1.2.3.4\nsearch", (["1.2.3.4"], [], [])),
    ("nameserver 1.2.3.4", (["1.2.3.4"], [], [])),
    (" nameserver 1.2.3.4", (["1.2.3.4"], [], [])),
    ("\tnameserver 1.2.3.4", (["1.2.3.4"], [], [])),
    ("nameserver\t1.2.3.4", (["1.2.3.4"], [], [])),
    ("nameserver \t 1.2.3.4", (["1.2.3.4"], [], [])),
    ("nameserver 1.2.3.4\nnameserver 5.6.7.8", (["1.2.3.4", "5.6.7.8"], [], [])),
    ("nameserver 1.2.3.4 #comment", (["1.2.3.4"], [], [])),
    ("search ", ([], [], [])),
    ("search .", ([], [""], [])),
    ("search foo", ([], ["foo"], [])),
    ("search foo bar", ([], ["foo", "bar"], [])),
    ("search foo. bar", ([], ["foo", "bar"], [])),
    ("search foo bar bat\n", ([], ["foo", "bar", "bat"], [])),
    ("search foo\nsearch bar", ([], ["bar"], [])),
    ("nameserver 1.2.3.4\nsearch foo bar", (["1.2.3.4"], ["foo", "bar"], [])),
    (
        "nameserver 1.2.3.4\nsearch foo\nnameserver 5.6.7.8\nsearch bar",
        (["1.2.3.4", "5.6.7.8"], ["bar"], []),
    ),
    ("#comment\nnameserver 1.2.3.4\n#comment\nsearch foo\ncomment", (["1.2.3.4"], ["foo"], [])),
    ("options ", ([], [], [])),
    ("options ndots:5 attempts:2", ([], [], ["ndots:5", "attempts:2"])),
    ("options ndots:1\noptions ndots:5 attempts:3", ([], [], ["ndots:5", "attempts:3"])),
    (
        "nameserver 1.2.3.4\nsearch foo\nnameserver 5.6.7.8\nsearch bar\n"
        "options ndots:5 attempts:4",
        (["1.2.3.4", "5.6.7.8"], ["bar"], ["ndots:5", "attempts:4"]),
    ),
    ("domain example.com\nsearch foo", ([], ["foo"], [])),  # domain lines are not read
]


@pytest.mark.parametrize(("data", "expected"), PARSE_CASES)
def test_parse_node_resolv_conf(
    data: str, expected: tuple[list[str], list[str], list[str]] | None
) -> None:
    if expected is None:
        with pytest.raises(poddns.NodeResolvConfError):
            poddns.parse_node_resolv_conf(data)
        return
    got = poddns.parse_node_resolv_conf(data)
    assert (list(got.nameservers), list(got.searches), list(got.options)) == expected


CHARS_2048 = ["A" * 128] + ["A" * 127] * 15
THIRTY_TWO = ["testNS.svc.TEST", "svc.TEST", "TEST", *[str(i) for i in range(4, 33)]]

# TestFormDNSSearchFitsLimits (the ExpandedDNSConfig limits): (given, applied, warned)
SEARCH_CASES = [
    (["testNS.svc.TEST", "svc.TEST", "TEST"], ["testNS.svc.TEST", "svc.TEST", "TEST"], False),
    (
        ["testNS.svc.TEST", "svc.TEST", "TEST", "AAA", "BBB"],
        ["testNS.svc.TEST", "svc.TEST", "TEST", "AAA", "BBB"],
        False,
    ),
    (
        ["testNS.svc.TEST", "svc.TEST", "TEST", "AAA", "B" * 256, "BBB"],
        ["testNS.svc.TEST", "svc.TEST", "TEST", "AAA", "BBB"],
        True,
    ),
    (CHARS_2048, CHARS_2048, False),
    ([*CHARS_2048, "B"], CHARS_2048, True),
    (["a", "b", "c", "d", "e", "f", "g"], ["a", "b", "c", "d", "e", "f", "g"], False),
    (THIRTY_TWO, THIRTY_TWO, False),
    ([*THIRTY_TWO, "33"], THIRTY_TWO, True),
]


@pytest.mark.parametrize(("given", "applied", "warned"), SEARCH_CASES)
def test_search_list_limits(given: list[str], applied: list[str], warned: bool) -> None:
    assert len(" ".join(CHARS_2048)) == poddns.MAX_SEARCH_CHARS
    assert poddns.fit_searches(given) == (applied, warned)


@pytest.mark.parametrize(
    ("given", "applied", "warned"),
    [
        (["127.0.0.1"], ["127.0.0.1"], False),
        (["127.0.0.1", "10.0.0.10", "8.8.8.8"], ["127.0.0.1", "10.0.0.10", "8.8.8.8"], False),
        (
            ["127.0.0.1", "10.0.0.10", "8.8.8.8", "1.2.3.4"],
            ["127.0.0.1", "10.0.0.10", "8.8.8.8"],
            True,
        ),
    ],
)
def test_nameserver_limit(given: list[str], applied: list[str], warned: bool) -> None:
    assert poddns.fit_nameservers(given) == (applied, warned)


@pytest.mark.parametrize(
    ("existing", "pod", "expected"),
    [
        (["ndots:5", "debug"], [], ["ndots:5", "debug"]),
        (
            ["ndots:5", "debug"],
            [("single-request", None), ("attempts", "3")],
            ["ndots:5", "debug", "single-request", "attempts:3"],
        ),
        (
            ["ndots:5", "debug"],
            [("ndots", "3"), ("debug", None), ("single-request", None), ("attempts", "3")],
            ["ndots:3", "debug", "single-request", "attempts:3"],
        ),
        (["ndots:5"], [("ndots", "")], ["ndots"]),  # an empty value writes the name alone
    ],
)
def test_merge_options(
    existing: list[str], pod: list[tuple[str, str | None]], expected: list[str]
) -> None:
    assert poddns.merge_options(existing, pod) == expected


@pytest.mark.parametrize(
    ("policy", "host_network", "applied"),
    [
        (CLUSTER_FIRST, False, CLUSTER_FIRST),
        (CLUSTER_FIRST_WITH_HOST_NET, True, CLUSTER_FIRST_WITH_HOST_NET),
        (CLUSTER_FIRST_WITH_HOST_NET, False, CLUSTER_FIRST_WITH_HOST_NET),
        (DEFAULT, False, DEFAULT),
        (DEFAULT, True, DEFAULT),
        (CLUSTER_FIRST, True, DEFAULT),  # hostNetwork: falls back to Default
        (NONE, False, NONE),
        ("invalidPolicy", False, CLUSTER_FIRST),  # the kubelet logs and uses ClusterFirst
    ],
)
def test_pod_dns_type(policy: str, host_network: bool, applied: str) -> None:
    assert poddns.applied_policy(PodDNS("testNS", policy, host_network)) == applied


def test_get_pod_dns_without_a_node_resolv_conf() -> None:
    # TestGetPodDNS, first half: an empty --resolv-conf; the pods are on the host network.
    kubelet = Kubelet(("203.0.113.1",), "kubernetes.io", None)
    with_host_net = poddns.pod_resolv_conf(PodDNS("", CLUSTER_FIRST_WITH_HOST_NET, True), kubelet)
    assert with_host_net.nameservers == ("203.0.113.1",)
    assert with_host_net.searches[0] == ".svc.kubernetes.io"  # the pod has no namespace
    for pod in (PodDNS("", CLUSTER_FIRST, True), PodDNS("", DEFAULT, True)):
        conf = poddns.pod_resolv_conf(pod, kubelet)
        assert (conf.nameservers, conf.searches) == (("127.0.0.1",), (".",))
    v6 = poddns.pod_resolv_conf(PodDNS("", DEFAULT), Kubelet(node=None, node_ipv6=True))
    assert v6.nameservers == ("::1",)
    cluster = poddns.pod_resolv_conf(PodDNS("", CLUSTER_FIRST, False), kubelet)
    assert cluster.nameservers == ("203.0.113.1",)


def test_get_pod_dns_prepends_the_cluster_search_list() -> None:
    # TestGetPodDNS, second half: the node's search list follows the cluster's.
    node = NodeResolvConf(("8.8.8.8",), ("a.example", "b.example"), ("rotate",))
    conf = poddns.pod_resolv_conf(PodDNS("ns"), Kubelet(("203.0.113.1",), "kubernetes.io", node))
    assert conf.searches == (
        "ns.svc.kubernetes.io",
        "svc.kubernetes.io",
        "kubernetes.io",
        "a.example",
        "b.example",
    )
    assert conf.options == ("ndots:5",)  # the node's options are not used
    assert conf.text() == (
        "nameserver 203.0.113.1\n"
        "search ns.svc.kubernetes.io svc.kubernetes.io kubernetes.io a.example b.example\n"
        "options ndots:5\n"
    )


CUSTOM = DNSConfig(("10.0.0.11",), ("my.domain",), (("ndots", "3"), ("debug", None)))
CLUSTER_CUSTOM = (
    ("10.0.0.10", "10.0.0.11"),
    ("testNS.svc.kubernetes.io", "svc.kubernetes.io", "kubernetes.io", "host.domain", "my.domain"),
    ("ndots:3", "debug"),
)
CUSTOM_KUBELET = Kubelet(
    ("10.0.0.10",), "kubernetes.io", NodeResolvConf(("8.8.8.8",), ("host.domain",))
)


@pytest.mark.parametrize(
    ("policy", "host_network", "dns_config", "expected"),
    [
        # TestGetPodDNSCustom
        (NONE, False, None, ((), (), ())),
        (
            NONE,
            False,
            DNSConfig(
                ("203.0.113.1",), ("my.domain", "second.domain"), (("ndots", "3"), ("debug", None))
            ),
            (("203.0.113.1",), ("my.domain", "second.domain"), ("ndots:3", "debug")),
        ),
        (
            CLUSTER_FIRST,
            False,
            CUSTOM,
            CLUSTER_CUSTOM,
        ),
        (
            CLUSTER_FIRST_WITH_HOST_NET,
            True,
            CUSTOM,
            CLUSTER_CUSTOM,
        ),
        (
            DEFAULT,
            False,
            CUSTOM,
            (("8.8.8.8", "10.0.0.11"), ("host.domain", "my.domain"), ("ndots:3", "debug")),
        ),
        # Duplicates are dropped, not counted against the limits.
        (
            CLUSTER_FIRST,
            False,
            DNSConfig(("10.0.0.10",), ("svc.kubernetes.io",)),
            (
                ("10.0.0.10",),
                ("testNS.svc.kubernetes.io", "svc.kubernetes.io", "kubernetes.io", "host.domain"),
                ("ndots:5",),
            ),
        ),
    ],
)
def test_get_pod_dns_custom(
    policy: str,
    host_network: bool,
    dns_config: DNSConfig | None,
    expected: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
) -> None:
    pod = PodDNS("testNS", policy, host_network, dns_config)
    conf = poddns.pod_resolv_conf(pod, CUSTOM_KUBELET)
    assert (conf.nameservers, conf.searches, conf.options) == expected
    assert conf.warnings == ()


def test_limits_past_the_merge_are_cut_with_the_kubelet_warning() -> None:
    two = Kubelet(("10.0.0.10", "10.0.0.20"), "cluster.local", NodeResolvConf())
    pod = PodDNS(
        "ns", dns_config=DNSConfig(("1.1.1.1", "8.8.8.8"), tuple(f"d{i}" for i in range(31)))
    )
    conf = poddns.pod_resolv_conf(pod, two)
    assert conf.nameservers == ("10.0.0.10", "10.0.0.20", "1.1.1.1")
    assert len(conf.searches) == 32 and conf.searches[-1] == "d28"
    assert conf.warnings == (
        "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
        "nameserver line is: 10.0.0.10 10.0.0.20 1.1.1.1",
        "Search Line limits were exceeded, some search paths have been omitted, the applied "
        "search line is: " + " ".join(conf.searches),
    )


def test_cluster_first_without_cluster_dns_falls_back_to_default() -> None:
    node = NodeResolvConf(("192.0.2.53",), ("corp.example",), ("ndots:2",))
    conf = poddns.pod_resolv_conf(PodDNS("ns"), Kubelet((), "cluster.local", node))
    assert (conf.policy, conf.nameservers, conf.searches, conf.options) == (
        DEFAULT,
        ("192.0.2.53",),
        ("corp.example",),
        ("ndots:2",),
    )
    assert 'Falling back to "Default" policy' in conf.warnings[0]
    no_domain = poddns.pod_resolv_conf(PodDNS("ns"), Kubelet(("10.0.0.10",), "", node))
    assert no_domain.searches == ("corp.example",)  # no cluster domain: the node's list only


def test_option_values_for_json() -> None:
    conf = poddns.PodResolvConf((), (), ("ndots:2", "single-request-reopen", "edns0"), NONE)
    assert conf.option_values == {"ndots": "2", "single-request-reopen": None, "edns0": None}
