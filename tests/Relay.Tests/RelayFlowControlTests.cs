using System.Buffers;
using System.IO.Pipelines;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay.Tests;

/// <summary>Credit bounds what is in flight per circuit direction; readers that stop are cut, never buffered (docs/protocol.md §9.4, §9.5).</summary>
[Collection(RunsAlone.Name)] // the SlowReader test reads /metrics
public sealed class RelayFlowControlTests
{
    private const int Window = 256 * 1024;

    [Fact]
    public async Task A_writer_to_a_reader_that_reads_nothing_stops_after_one_window_and_resumes_when_it_reads()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay, window: Window);
        var linkB = await kit.ConnectAsync(bob, relay, window: Window);
        var (opened, accepted, _) = await RelayTestKit.CircuitAsync(linkA, linkB, bob.Identity.Identifier.ToString());
        long fromAlice = 0;
        relay.Switch.FrameObserver = frame =>
        {
            if (frame.Span[0] == (byte)RelayFrameType.Data && RelayFrames.ReadCircuit(frame.Span) == opened.Id)
            {
                Interlocked.Add(ref fromAlice, frame.Length - 5);
            }
        };
        var payload = RelayTestKit.Pattern(4 * Window, 11);

        var flush = opened.Output.WriteAsync(payload).AsTask();
        await RelayTestKit.UntilAsync(() => Interlocked.Read(ref fromAlice) >= Window);

        Assert.Equal(Window, Interlocked.Read(ref fromAlice));
        Assert.False(flush.IsCompleted, "Three windows cannot have left alice while bob granted one.");

        var received = await ReadExactlyAsync(accepted.Input, payload.Length);
        await flush.WaitAsync(RelayTestKit.Guard);
        Assert.Equal(payload, received);
        Assert.Equal(payload.Length, Interlocked.Read(ref fromAlice));
    }

    [Fact]
    public async Task DATA_beyond_credit_resets_the_circuit_at_both_ends_with_FlowControlViolation()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var mallory = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkB = await kit.ConnectAsync(bob, relay, window: 4096);
        var hop = await kit.OpenRawHopAsync(mallory, relay);
        await hop.HelloAsync(listen: false);

        await hop.SendAsync(RelayFrames.Open(1, new OpenFrame(bob.Identity.Identifier.ToString(), 65536, null, null, [])));
        var incoming = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard);
        var accepted = await incoming.AcceptAsync().WaitAsync(RelayTestKit.Guard);
        var accept = await hop.ExpectAsync(RelayFrameType.Accept);
        Assert.Equal(4096u, RelayFrames.DecodeWindow(accept));

        var data = new byte[5 + 4097];
        RelayFrames.WriteDataHeader(data, 1);
        await hop.SendAsync(data);

        var reset = await hop.ExpectAsync(RelayFrameType.Reset);
        Assert.Equal(1u, RelayFrames.ReadCircuit(reset));
        Assert.Equal(RelayErrorCode.FlowControlViolation, RelayFrames.DecodeCircuitReason(reset, RelayFrameType.Reset).Code);
        Assert.Equal(RelayErrorCode.FlowControlViolation, (await accepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        var read = await Assert.ThrowsAsync<RelayException>(async () => await accepted.Input.ReadAsync().AsTask().WaitAsync(RelayTestKit.Guard));
        Assert.Equal(RelayErrorCode.FlowControlViolation, read.Code);
        await RelayTestKit.UntilAsync(() => relay.Server.CircuitEndCount == 0);
        Assert.Equal(2, relay.Server.ConnectionCount); // only the circuit ended, not the hops
    }

    [Fact]
    public async Task CREDIT_beyond_the_window_resets_the_circuit_at_both_ends_with_FlowControlViolation()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var mallory = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkB = await kit.ConnectAsync(bob, relay);
        var hop = await kit.OpenRawHopAsync(mallory, relay);
        await hop.HelloAsync(listen: false);
        await hop.SendAsync(RelayFrames.Open(1, new OpenFrame(bob.Identity.Identifier.ToString(), 65536, null, null, [])));
        var incoming = await linkB.AcceptCircuitAsync().AsTask().WaitAsync(RelayTestKit.Guard);
        var accepted = await incoming.AcceptAsync().WaitAsync(RelayTestKit.Guard);
        await hop.ExpectAsync(RelayFrameType.Accept);

        // Bob holds the whole 65536-byte window already: one more byte of credit is beyond it.
        await hop.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Credit, 1, 1));

        var reset = await hop.ExpectAsync(RelayFrameType.Reset);
        Assert.Equal(RelayErrorCode.FlowControlViolation, RelayFrames.DecodeCircuitReason(reset, RelayFrameType.Reset).Code);
        Assert.Equal(RelayErrorCode.FlowControlViolation, (await accepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);
    }

    [Fact]
    public async Task A_hop_that_stops_reading_is_cut_as_a_SlowReader_after_SendStallTimeout_and_its_circuits_end_with_PeerGone()
    {
        const int Circuits = 16;
        const int MaxWindow = 1 << 20;
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["SendStallTimeout"] = "00:00:02" });
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var mallory = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay, listen: false);

        // Mallory's socket buffer is fixed and small; its hop channel stops reading once 16 messages wait unread.
        var hop = await kit.OpenRawHopAsync(mallory, relay, receiveBufferSize: 8192);
        await hop.HelloAsync();
        var circuits = new List<Circuit>();
        for (var i = 0; i < Circuits; i++)
        {
            var opening = linkA.OpenCircuitAsync(mallory.Identity.Identifier.ToString());
            var open = await hop.ExpectAsync(RelayFrameType.Open);
            await hop.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Accept, RelayFrames.ReadCircuit(open), MaxWindow));
            circuits.Add(await opening.WaitAsync(RelayTestKit.Guard));
        }

        long fromAlice = 0;
        long toMallory = 0;
        relay.Switch.FrameObserver = frame =>
        {
            if (frame.Span[0] == (byte)RelayFrameType.Data)
            {
                // Alice dialed, so her circuit ids are odd; the relay opened mallory's, so those are even.
                if (RelayFrames.ReadCircuit(frame.Span) % 2 == 1)
                {
                    Interlocked.Add(ref fromAlice, frame.Length - 5);
                }
                else
                {
                    Interlocked.Add(ref toMallory, frame.Length - 5);
                }
            }
        };
        var flushes = circuits.Select(c => c.Output.WriteAsync(RelayTestKit.Pattern(MaxWindow, 5)).AsTask()).ToList();

        // Every byte alice had credit for reached the relay: 16 MiB, more than loopback buffers absorb.
        await RelayTestKit.UntilAsync(() => Interlocked.Read(ref fromAlice) == (long)Circuits * MaxWindow);
        Assert.True(Interlocked.Read(ref toMallory) < (long)Circuits * MaxWindow, "The relay could hand everything to mallory's socket.");
        Assert.Equal(2, relay.Server.ConnectionCount);

        // The relay may still be filling mallory's socket buffers (in real time) when fake time starts to move; any such
        // progress restarts the stall clock. Fake time therefore moves in steps until the cut: once the queue is stuck,
        // SendStallTimeout (2 s) later. Bounded well below every idle timeout (60 s).
        var advanced = TimeSpan.Zero;
        await RelayTestKit.UntilAsync(() =>
        {
            if (circuits[0].Completion.IsCompleted)
            {
                return true;
            }

            Assert.True(advanced < TimeSpan.FromSeconds(30), "The stalled hop was not cut.");
            kit.Time.Advance(TimeSpan.FromMilliseconds(500));
            advanced += TimeSpan.FromMilliseconds(500);
            return false;
        });

        foreach (var circuit in circuits)
        {
            Assert.Equal(RelayErrorCode.PeerGone, (await circuit.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        }

        await RelayTestKit.UntilAsync(() => relay.Server.ConnectionCount == 1);
        Assert.Contains("reason=\"slow_reader\"", await RelayTestKit.ScrapeMetricsAsync(relay), StringComparison.Ordinal);
        GC.KeepAlive(flushes);
    }

    private static async Task<byte[]> ReadExactlyAsync(PipeReader input, int count)
    {
        var received = new byte[count];
        var at = 0;
        while (at < count)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(RelayTestKit.Guard);
            var take = (int)Math.Min(result.Buffer.Length, count - at);
            result.Buffer.Slice(0, take).CopyTo(received.AsSpan(at));
            at += take;
            input.AdvanceTo(result.Buffer.GetPosition(take));
            Assert.False(result.IsCompleted && at < count, "The circuit closed early.");
        }

        return received;
    }
}
