using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Perfolizer.Horology;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The relay's per-frame forwarding cost. <see cref="RelayCircuitEcho"/>: one 1 KiB DATA frame from agent A
/// through an in-process relay to agent B, echoed by B, back through the relay to A (two forwarded frames, four
/// hop records sealed or opened by the relay, two by each agent). <see cref="DirectChannelEcho"/> (the baseline):
/// the same 1 KiB as a secure-channel message over a direct loopback TCP connection and its echo, the cryptography
/// of one hop with no relay. Everything (agents and relay) runs in this process, so the allocation column counts
/// all of them; <c>--relay</c> measures the relay's own allocations in a process of its own.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
public class RelayForwardingBenchmarks
{
    /// <summary>Round trips, one after another, per benchmark invocation (see ChannelThroughputBenchmarks for why).</summary>
    public const int RoundTripsPerInvoke = 16;

    private const int FrameSize = 1024;

    private RelayPeers _peers = null!;
    private Circuit _opened = null!;
    private Circuit _accepted = null!;
    private SecureChannel _initiator = null!;
    private SecureChannel _responder = null!;
    private Task _circuitEcho = Task.CompletedTask;
    private Task _channelEcho = Task.CompletedTask;
    private byte[] _payload = [];

    [GlobalSetup]
    public async Task Setup()
    {
        _peers = await RelayPeers.CreateAsync().ConfigureAwait(false);
        var a = await _peers.CreateAgentAsync().ConfigureAwait(false);
        var b = await _peers.CreateAgentAsync().ConfigureAwait(false);
        var relay = await _peers.StartRelayAsync().ConfigureAwait(false);
        var linkA = await _peers.LinkAsync(a, relay.HopEndPoint!, relay.Identifier, listen: false).ConfigureAwait(false);
        var linkB = await _peers.LinkAsync(b, relay.HopEndPoint!, relay.Identifier, listen: true).ConfigureAwait(false);
        (_opened, _accepted) = await RelayPeers.CircuitAsync(linkA, linkB, b).ConfigureAwait(false);
        _circuitEcho = Task.Run(() => RelayMode.EchoAsync(_accepted));

        var (client, server, _) = await LoopbackTcp.PairAsync(throughForwarder: false).ConfigureAwait(false);
        (_initiator, _responder) = await _peers.ChannelAsync(a, LoopbackTcp.Pipe(client), b, LoopbackTcp.Pipe(server)).ConfigureAwait(false);
        _channelEcho = Task.Run(ChannelEchoAsync);

        _payload = RandomNumberGenerator.GetBytes(FrameSize);
        await RelayMode.CircuitRoundTripsAsync(_opened, _payload, 100).ConfigureAwait(false);
        await DirectChannelEcho().ConfigureAwait(false);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _opened.Output.CompleteAsync().ConfigureAwait(false);
        await _circuitEcho.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        await _peers.DisposeAsync().ConfigureAwait(false);
        await _channelEcho.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    [Benchmark(OperationsPerInvoke = RoundTripsPerInvoke)]
    public Task RelayCircuitEcho() => RelayMode.CircuitRoundTripsAsync(_opened, _payload, RoundTripsPerInvoke);

    [Benchmark(Baseline = true, OperationsPerInvoke = RoundTripsPerInvoke)]
    public async Task DirectChannelEcho()
    {
        for (var i = 0; i < RoundTripsPerInvoke; i++)
        {
            await _initiator.SendAsync(_payload).ConfigureAwait(false);
            using var reply = await _initiator.ReceiveAsync().ConfigureAwait(false) ?? throw new InvalidOperationException("The channel closed.");
        }
    }

    private async Task ChannelEchoAsync()
    {
        while (await _responder.ReceiveAsync().ConfigureAwait(false) is { } message)
        {
            using (message)
            {
                await _responder.SendAsync(message.Payload).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The <c>--compare</c> job: 3 warm-up and 6 measured iterations of 250 ms, one process.</summary>
    private sealed class ShortConfig : ManualConfig
    {
        public ShortConfig() => AddJob(Job.Default
            .WithId("RelayShort")
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(6)
            .WithIterationTime(TimeInterval.FromMilliseconds(250)));
    }
}
