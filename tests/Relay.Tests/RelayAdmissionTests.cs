using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay.Tests;

/// <summary>Who may connect to a relay and at which addresses it is reachable (docs/protocol.md §9.1, §9.3).</summary>
public sealed class RelayAdmissionTests
{
    [Fact]
    public async Task An_agent_without_a_credential_is_denied_at_the_hop_handshake()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var stranger = await kit.CreateAgentAsync(attributes: null);

        var denied = await Assert.ThrowsAsync<SecureChannelException>(() => kit.OpenHopAsync(stranger, relay));

        Assert.Equal(ChannelErrorCode.AccessDenied, denied.Code);
        Assert.Equal(0, relay.Server.ConnectionCount);
    }

    [Fact]
    public async Task A_name_granted_by_a_credential_is_reachable_by_name()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent", "relay-name=billing"]);
        var linkA = await kit.ConnectAsync(alice, relay, listen: false);
        var linkB = await kit.ConnectAsync(bob, relay, names: ["billing"]);
        Assert.Equal([bob.Identity.Identifier.ToString(), "billing"], linkB.Welcome.Addresses);

        var (_, _, byName) = await RelayTestKit.CircuitAsync(linkA, linkB, "billing");
        var (_, _, byQualifiedName) = await RelayTestKit.CircuitAsync(linkA, linkB, "billing@relay-a");

        Assert.Equal("billing", byName.Address);
        Assert.Equal(alice.Identity.Identifier.ToString(), byName.Opener);
        Assert.Equal("billing", byQualifiedName.Address);
    }

    [Fact]
    public async Task A_name_no_credential_grants_is_refused_and_nothing_is_registered()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent", "relay-name=billing"]);
        var linkA = await kit.ConnectAsync(alice, relay, listen: false);

        var refused = await Assert.ThrowsAsync<RelayException>(() => kit.ConnectAsync(bob, relay, names: ["billing", "payroll"]));

        Assert.Equal(RelayErrorCode.NameNotGranted, refused.Code);
        Assert.True(refused.FromPeer);
        var billing = await Assert.ThrowsAsync<RelayException>(() => linkA.OpenCircuitAsync("billing").WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.Unreachable, billing.Code);
        var byIdentifier = await Assert.ThrowsAsync<RelayException>(() => linkA.OpenCircuitAsync(bob.Identity.Identifier.ToString()).WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.Unreachable, byIdentifier.Code);
    }

    [Fact]
    public async Task More_names_than_MaxNamesPerConnection_are_refused_with_LimitExceeded()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["MaxNamesPerConnection"] = "1" });
        var bob = await kit.CreateAgentAsync(["role=agent", "relay-name=billing", "relay-name=payroll"]);

        var refused = await Assert.ThrowsAsync<RelayException>(() => kit.ConnectAsync(bob, relay, names: ["billing", "payroll"]));

        Assert.Equal(RelayErrorCode.LimitExceeded, refused.Code);
        Assert.True(refused.FromPeer);
        var one = await kit.ConnectAsync(bob, relay, names: ["payroll"]);
        Assert.Contains("payroll", one.Welcome.Addresses);
    }

    [Fact]
    public async Task A_relay_HELLO_from_an_identity_not_configured_as_that_peer_gets_UnknownPeer()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var impostor = await kit.CreateAgentAsync(["role=relay"]);
        var hop = await kit.OpenRawHopAsync(impostor, relay);

        await hop.SendAsync(RelayFrames.Hello(new HelloFrame(false, [], "relay-x")));

        Assert.Equal(RelayErrorCode.UnknownPeer, (await hop.ExpectGoAwayAsync()).Code);
        await hop.ExpectClosedAsync();
        Assert.False(relay.Server.IsLinked("relay-x"));
    }
}
