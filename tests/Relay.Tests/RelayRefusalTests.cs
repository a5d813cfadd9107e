using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay.Tests;

/// <summary>OPENs the relay or the target refuses, with the code the opener acts on (docs/protocol.md §9.4, §9.5).</summary>
public sealed class RelayRefusalTests
{
    [Fact]
    public async Task An_address_nobody_holds_is_refused_as_Unreachable()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var absent = await kit.CreateAgentAsync(["role=agent"]);
        var link = await kit.ConnectAsync(alice, relay);

        var byIdentifier = await Assert.ThrowsAsync<RelayException>(() => link.OpenCircuitAsync(absent.Identity.Identifier.ToString()).WaitAsync(RelayTestKit.Guard));
        var byName = await Assert.ThrowsAsync<RelayException>(() => link.OpenCircuitAsync("nobody").WaitAsync(RelayTestKit.Guard));

        Assert.Equal(RelayErrorCode.Unreachable, byIdentifier.Code);
        Assert.True(byIdentifier.FromPeer);
        Assert.Equal(RelayErrorCode.Unreachable, byName.Code);
        Assert.True(byName.FromPeer);
    }

    [Fact]
    public async Task A_target_that_refuses_makes_the_opener_see_Refused()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);

        var opening = linkA.OpenCircuitAsync(bob.Identity.Identifier.ToString());
        var incoming = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard);
        await incoming.RefuseAsync(RelayErrorCode.Refused, "no");

        var refused = await Assert.ThrowsAsync<RelayException>(() => opening.WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.Refused, refused.Code);
        Assert.True(refused.FromPeer);
        Assert.Contains("no", refused.Message, StringComparison.Ordinal);
        await RelayTestKit.UntilAsync(() => relay.Server.CircuitEndCount == 0);
    }

    [Fact]
    public async Task An_address_at_an_unknown_relay_is_refused_as_RouteUnknown()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var link = await kit.ConnectAsync(alice, relay);

        var refused = await Assert.ThrowsAsync<RelayException>(() => link.OpenCircuitAsync("x@relay-zz").WaitAsync(RelayTestKit.Guard));

        Assert.Equal(RelayErrorCode.RouteUnknown, refused.Code);
        Assert.True(refused.FromPeer);
    }

    [Fact]
    public async Task An_OPEN_the_target_never_answers_is_refused_with_OpenTimeout_and_reset_toward_the_target()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["OpenTimeout"] = "00:00:05" });
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);

        var opening = linkA.OpenCircuitAsync(bob.Identity.Identifier.ToString());
        var incoming = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard); // the relay's timer runs now
        kit.Time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(opening.IsCompleted);
        kit.Time.Advance(TimeSpan.FromSeconds(2));

        var timedOut = await Assert.ThrowsAsync<RelayException>(() => opening.WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.OpenTimeout, timedOut.Code);
        Assert.True(timedOut.FromPeer);

        // The target's late answer finds nothing: either it already heard the RESET, or its circuit is reset at once.
        try
        {
            var late = await incoming.AcceptAsync().WaitAsync(RelayTestKit.Guard);
            Assert.Equal(RelayErrorCode.OpenTimeout, (await late.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        }
        catch (RelayException e)
        {
            Assert.Equal(RelayErrorCode.OpenTimeout, e.Code);
        }

        await RelayTestKit.UntilAsync(() => relay.Server.CircuitEndCount == 0);
    }

    [Fact]
    public async Task Opens_beyond_MaxPendingOpensPerConnection_are_refused_with_LimitExceeded_until_one_is_answered()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["MaxPendingOpensPerConnection"] = "2" });
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        var bobAddress = bob.Identity.Identifier.ToString();

        var first = linkA.OpenCircuitAsync(bobAddress);
        var second = linkA.OpenCircuitAsync(bobAddress);
        var incoming1 = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard);
        var incoming2 = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard);

        var third = await Assert.ThrowsAsync<RelayException>(() => linkA.OpenCircuitAsync(bobAddress).WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.LimitExceeded, third.Code);
        Assert.True(third.FromPeer);

        // Answering one frees a slot.
        await incoming1.RefuseAsync(RelayErrorCode.Refused, "busy");
        Assert.Equal(RelayErrorCode.Refused, (await Assert.ThrowsAsync<RelayException>(() => first.WaitAsync(RelayTestKit.Guard))).Code);
        var fourth = linkA.OpenCircuitAsync(bobAddress);
        var incoming4 = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard);
        await incoming4.AcceptAsync().WaitAsync(RelayTestKit.Guard);
        await fourth.WaitAsync(RelayTestKit.Guard);
        await incoming2.AcceptAsync().WaitAsync(RelayTestKit.Guard);
        await second.WaitAsync(RelayTestKit.Guard);
    }

    [Fact]
    public async Task Circuits_beyond_MaxCircuitsPerConnection_are_refused_with_LimitExceeded_on_either_end()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["MaxCircuitsPerConnection"] = "2" });
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var carol = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        var linkC = await kit.ConnectAsync(carol, relay);
        var bobAddress = bob.Identity.Identifier.ToString();
        var (opened1, _, _) = await RelayTestKit.CircuitAsync(linkA, linkB, bobAddress);
        await RelayTestKit.CircuitAsync(linkA, linkB, bobAddress);

        // The opener's hop is full.
        var fromFull = await Assert.ThrowsAsync<RelayException>(() => linkA.OpenCircuitAsync(carol.Identity.Identifier.ToString()).WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.LimitExceeded, fromFull.Code);

        // The target's hop is full.
        var toFull = await Assert.ThrowsAsync<RelayException>(() => linkC.OpenCircuitAsync(bobAddress).WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.LimitExceeded, toFull.Code);

        // Ending a circuit frees its place on both hops.
        await opened1.DisposeAsync();
        await RelayTestKit.UntilAsync(() => relay.Server.CircuitEndCount == 2);
        await RelayTestKit.CircuitAsync(linkC, linkB, bobAddress);
    }

    [Fact]
    public async Task Circuit_windows_toward_one_hop_stay_within_its_queue_budget()
    {
        // 1 MiB of queue: windows toward one hop may sum to 768 KiB, three circuits of 256 KiB.
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["MaxQueuedBytesPerConnection"] = "1048576" });
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var carol = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        var linkC = await kit.ConnectAsync(carol, relay);
        var bobAddress = bob.Identity.Identifier.ToString();
        var (first, _, _) = await RelayTestKit.CircuitAsync(linkA, linkB, bobAddress);
        for (var i = 0; i < 2; i++)
        {
            await RelayTestKit.CircuitAsync(linkA, linkB, bobAddress);
        }

        // The opener's budget is spent: refused at once.
        var opener = await Assert.ThrowsAsync<RelayException>(() => linkA.OpenCircuitAsync(carol.Identity.Identifier.ToString()).WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.LimitExceeded, opener.Code);

        // The target's budget is spent: its ACCEPT is refused, and the opener learns why.
        var opening = linkC.OpenCircuitAsync(bobAddress);
        var incoming = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard);
        var accepted = await incoming.AcceptAsync().WaitAsync(RelayTestKit.Guard);
        var target = await Assert.ThrowsAsync<RelayException>(() => opening.WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.LimitExceeded, target.Code);
        Assert.Equal(RelayErrorCode.LimitExceeded, (await accepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);

        // Ending a circuit returns its windows to both budgets.
        await first.DisposeAsync();
        await RelayTestKit.UntilAsync(() => relay.Server.CircuitEndCount == 4);
        await RelayTestKit.CircuitAsync(linkC, linkB, bobAddress);
    }
}
