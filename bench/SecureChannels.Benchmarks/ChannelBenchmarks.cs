using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using SecureChannels.Protocol.Channel;

namespace SecureChannels.Benchmarks;

/// <summary>
/// A complete channel handshake between the two <see cref="ChannelPeers"/>, both sides in one process over a
/// fresh in-memory connection: ConnectAsync and AcceptAsync concurrently (Noise XX; each side verifies the
/// other's identity history, key attestation and one-link credential chain, and evaluates its policy; the
/// responder's ACCEPT record), then DisposeAsync of both channels (a CLOSE record, pump and timer stopped).
/// </summary>
[MemoryDiagnoser]
public class ChannelHandshakeBenchmarks
{
    private ChannelPeers _peers = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _peers = await ChannelPeers.CreateAsync().ConfigureAwait(false);
        var (initiator, responder) = await _peers.OpenAsync().ConfigureAwait(false);
        await using (initiator.ConfigureAwait(false))
        await using (responder.ConfigureAwait(false))
        {
            _peers.EnsurePaired(initiator, responder);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _peers.Dispose();

    [Benchmark]
    public async Task Handshake()
    {
        var (initiator, responder) = await _peers.OpenAsync().ConfigureAwait(false);
        await initiator.DisposeAsync().ConfigureAwait(false);
        await responder.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// One message over an open channel (opened once in setup, over an in-memory connection): the initiator's
/// SendAsync, the responder's ReceiveAsync and disposal of the received message (its pooled buffer goes back),
/// then the next message. Messages above 65,518 bytes travel as several records; 64 KiB and 1 MiB also exceed
/// the pipe's 64 KiB pause threshold, so the send completes only as the receiver drains.
/// </summary>
/// <remarks>
/// <see cref="MessagesPerInvoke"/> messages per invocation, one after another in one async loop, reported per
/// message: BenchmarkDotNet blocks its thread on every invocation's task, and the wake-up when the task
/// completes on a thread-pool thread would otherwise be charged to every message (a real receive loop never
/// pays it). The TLS and hand-off baselines do the same.
/// </remarks>
[MemoryDiagnoser]
public class ChannelThroughputBenchmarks
{
    /// <summary>Messages sent and received, one after another, per benchmark invocation.</summary>
    public const int MessagesPerInvoke = 16;

    private ChannelPeers _peers = null!;
    private SecureChannel _initiator = null!;
    private SecureChannel _responder = null!;
    private byte[] _payload = [];

    [Params(64, 1024, 65536, 1048576)]
    public int MessageSize { get; set; } = 64;

    [GlobalSetup]
    public async Task Setup()
    {
        _peers = await ChannelPeers.CreateAsync().ConfigureAwait(false);
        (_initiator, _responder) = await _peers.OpenAsync().ConfigureAwait(false);
        _payload = RandomNumberGenerator.GetBytes(MessageSize);

        var send = _initiator.SendAsync(_payload);
        using (var message = await _responder.ReceiveAsync().ConfigureAwait(false))
        {
            if (message is null || !message.Payload.Span.SequenceEqual(_payload))
            {
                throw new InvalidOperationException("The responder did not receive what the initiator sent.");
            }
        }

        await send.ConfigureAwait(false);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _initiator.DisposeAsync().ConfigureAwait(false);
        await _responder.DisposeAsync().ConfigureAwait(false);
        _peers.Dispose();
    }

    [Benchmark(OperationsPerInvoke = MessagesPerInvoke)]
    public async Task<int> SendReceive()
    {
        var received = 0;
        for (var i = 0; i < MessagesPerInvoke; i++)
        {
            var send = _initiator.SendAsync(_payload);
            using var message = await _responder.ReceiveAsync().ConfigureAwait(false)
                ?? throw new InvalidOperationException("The channel closed.");
            await send.ConfigureAwait(false);
            received += message.Payload.Length;
        }

        return received;
    }
}
