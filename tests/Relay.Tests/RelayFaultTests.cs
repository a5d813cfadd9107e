using System.Net.Sockets;
using System.Text;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay.Tests;

/// <summary>Hops and relays that fail mid-way: nothing is reported delivered that was not (docs/protocol.md §9.4).</summary>
public sealed class RelayFaultTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_opener_that_goes_away_mid_message_never_delivers_a_partial_message(bool dropTcp)
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        using var aliceTcp = await RelayTestKit.ConnectTcpClientAsync(relay.Server.HopEndPoint!);
        var aliceStream = aliceTcp.GetStream();
        var linkA = await kit.ConnectAsync(alice, relay, through: new RelayTestKit.DuplexPipe(System.IO.Pipelines.PipeReader.Create(aliceStream), System.IO.Pipelines.PipeWriter.Create(aliceStream)));
        var linkB = await kit.ConnectAsync(bob, relay);
        var (a, b, opened, accepted) = await kit.EndToEndOverCircuitAsync(alice, linkA, bob, linkB, bob.Identity.Identifier.ToString());
        {
            // The relay's read loop of alice's hop is held once 1 MiB of the message crossed it; alice can then be at
            // most one window (256 KiB) further, far from the end of the 8 MiB message.
            using var held = new SemaphoreSlim(0);
            using var release = new SemaphoreSlim(0);
            long fromAlice = 0;
            var holding = 0;
            relay.Switch.FrameObserver = frame =>
            {
                if (frame.Span[0] == (byte)RelayFrameType.Data && RelayFrames.ReadCircuit(frame.Span) == opened.Id
                    && Interlocked.Add(ref fromAlice, frame.Length - 5) > 1 << 20 && Interlocked.Exchange(ref holding, 1) == 0)
                {
                    held.Release();
                    release.Wait(RelayTestKit.Guard);
                }
            };
            var receiving = b.ReceiveAsync().AsTask();
            var sending = a.SendAsync(RelayTestKit.Pattern(8 << 20, 3)).AsTask();
            Assert.True(await held.WaitAsync(RelayTestKit.Guard));

            if (dropTcp)
            {
                aliceTcp.Client.LingerState = new LingerOption(true, 0);
                aliceTcp.Client.Close();
            }
            else
            {
                await linkA.DisposeAsync();
            }

            release.Release();

            await Assert.ThrowsAsync<SecureChannelException>(() => receiving.WaitAsync(RelayTestKit.Guard));
            Assert.Equal(RelayErrorCode.PeerGone, (await accepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);
            Assert.False(sending.IsCompletedSuccessfully, "The 8 MiB message cannot have left alice whole.");
            await RelayTestKit.UntilAsync(() => relay.Server.ConnectionCount == 1 && relay.Server.CircuitEndCount == 0);
        }

        // Not `await using`: a failing dispose must not hide a failed assertion above.
        await b.DisposeAsync();
        await a.DisposeAsync();
    }

    [Fact]
    public async Task A_relay_stop_ends_every_link_and_circuit_with_ShuttingDown_and_never_fakes_a_delivery()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        var (a, b, opened, accepted) = await kit.EndToEndOverCircuitAsync(alice, linkA, bob, linkB, bob.Identity.Identifier.ToString());
        {
            await a.SendAsync(Encoding.UTF8.GetBytes("one"));
            using (var one = await b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard))
            {
                Assert.Equal("one", Encoding.UTF8.GetString(one!.Payload.Span));
            }

            await a.SendAsync(Encoding.UTF8.GetBytes("two"));
            await relay.StopAsync();

            Assert.Equal(RelayErrorCode.ShuttingDown, (await linkA.Completion.WaitAsync(RelayTestKit.Guard)).Code);
            Assert.Equal(RelayErrorCode.ShuttingDown, (await linkB.Completion.WaitAsync(RelayTestKit.Guard)).Code);
            Assert.Equal(RelayErrorCode.ShuttingDown, (await opened.Completion.WaitAsync(RelayTestKit.Guard)).Code);
            Assert.Equal(RelayErrorCode.ShuttingDown, (await accepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);

            // "two" either arrived whole before the relay stopped, or the receive fails: never null (a fake graceful end).
            try
            {
                using var two = await b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard);
                Assert.NotNull(two);
                Assert.Equal("two", Encoding.UTF8.GetString(two.Payload.Span));
                await Assert.ThrowsAsync<SecureChannelException>(() => b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard));
            }
            catch (SecureChannelException)
            {
                // Not delivered, and reported as such.
            }

            await Assert.ThrowsAsync<RelayException>(() => linkA.OpenCircuitAsync(bob.Identity.Identifier.ToString()));
        }

        await b.DisposeAsync();
        await a.DisposeAsync();
    }

    [Fact]
    public async Task After_a_restart_on_the_same_identity_agents_connect_again_and_exchange_messages()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        var (opened, accepted, _) = await RelayTestKit.CircuitAsync(linkA, linkB, bob.Identity.Identifier.ToString());

        await relay.StopAsync();

        Assert.Equal(RelayErrorCode.ShuttingDown, (await linkA.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        Assert.Equal(RelayErrorCode.ShuttingDown, (await linkB.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        Assert.Equal(RelayErrorCode.ShuttingDown, (await opened.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        Assert.Equal(RelayErrorCode.ShuttingDown, (await accepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        var read = await Assert.ThrowsAsync<RelayException>(async () => await accepted.Input.ReadAsync().AsTask().WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.ShuttingDown, read.Code);

        var restarted = await kit.StartRelayAsync(identity: relay.Identity);
        Assert.Equal(relay.Server.Identifier, restarted.Server.Identifier);
        var linkA2 = await kit.ConnectAsync(alice, restarted);
        var linkB2 = await kit.ConnectAsync(bob, restarted);
        var (a2, b2) = await kit.EndToEndAsync(alice, linkA2, bob, linkB2, bob.Identity.Identifier.ToString());
        await using (a2)
        await using (b2)
        {
            await a2.SendAsync(Encoding.UTF8.GetBytes("three"));
            await b2.SendAsync(Encoding.UTF8.GetBytes("four"));
            using var three = await b2.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard);
            using var four = await a2.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard);
            Assert.Equal("three", Encoding.UTF8.GetString(three!.Payload.Span));
            Assert.Equal("four", Encoding.UTF8.GetString(four!.Payload.Span));
        }
    }
}
