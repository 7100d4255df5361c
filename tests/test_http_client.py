from integrations.edge_qa import probe_qa
from integrations.http import shared_client


def test_the_shared_client_never_becomes_a_sticky_client(edge_server):
    edge_server.reset()
    # Without "Secure" the cookie would be sent back over plain http by a normal client.
    edge_server.knobs(rate_limit=0, cookie_attributes="Max-Age=86400; Path=/")
    client = shared_client(2.0)
    reasons = [
        probe_qa(edge_server.qa_url("production"), client=client).header.reason for _ in range(5)
    ]
    assert reasons == ["sampled"] * 5
    assert list(client.cookies.jar) == []
