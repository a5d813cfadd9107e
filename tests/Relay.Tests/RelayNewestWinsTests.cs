using System.Buffers;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay.Tests;

/// <summary>A newer listening hop takes an address from an older one, which is always told (docs/protocol.md §9.3).</summary>
public sealed class RelayNewestWinsTests
{
    [Fact]
    public async Task A_second_link_of_the_same_identity_supersedes_the_first_and_takes_its_circuits_away()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var bobAddress = bob.Identity.Identifier.ToString();
        var linkA = await kit.ConnectAsync(alice, relay, listen: false);
        var oldLink = await kit.ConnectAsync(bob, relay);
        var (oldOpened, oldAccepted, _) = await RelayTestKit.CircuitAsync(linkA, oldLink, bobAddress);

        var newLink = await kit.ConnectAsync(bob, relay);

        var superseded = await oldLink.Completion.WaitAsync(RelayTestKit.Guard);
        Assert.Equal(RelayErrorCode.Superseded, superseded.Code);

        // The old hop's own circuits end with the GOAWAY's code; the far end of each hears the relay's RESET,
        // which CircuitSwitch.OnHopEnded maps to PeerGone for every code but ShuttingDown.
        Assert.Equal(RelayErrorCode.Superseded, (await oldAccepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        Assert.Equal(RelayErrorCode.PeerGone, (await oldOpened.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        var read = await Assert.ThrowsAsync<RelayException>(async () => await oldOpened.Input.ReadAsync().AsTask().WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.PeerGone, read.Code);

        var (opened, accepted, incoming) = await RelayTestKit.CircuitAsync(linkA, newLink, bobAddress);
        Assert.Equal(alice.Identity.Identifier.ToString(), incoming.Opener);
        await opened.Output.WriteAsync("hello"u8.ToArray());
        var data = await accepted.Input.ReadAtLeastAsync(5).AsTask().WaitAsync(RelayTestKit.Guard);
        Assert.Equal("hello"u8.ToArray(), data.Buffer.ToArray());
        accepted.Input.AdvanceTo(data.Buffer.End);
        Assert.Equal(2, relay.Server.ConnectionCount); // alice's hop and bob's new hop
    }

    [Fact]
    public async Task Another_identity_granted_the_same_name_takes_the_name_and_the_older_holder_is_told()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent", "relay-name=billing"]);
        var carol = await kit.CreateAgentAsync(["role=agent", "relay-name=billing"]);
        var linkA = await kit.ConnectAsync(alice, relay, listen: false);
        var linkB = await kit.ConnectAsync(bob, relay, names: ["billing"]);

        var linkC = await kit.ConnectAsync(carol, relay, names: ["billing"]);

        Assert.Equal(RelayErrorCode.Superseded, (await linkB.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        var (_, _, incoming) = await RelayTestKit.CircuitAsync(linkA, linkC, "billing");
        Assert.Equal("billing", incoming.Address);
    }
}
