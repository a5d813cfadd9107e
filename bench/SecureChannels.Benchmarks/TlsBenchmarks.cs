using System.Buffers.Binary;
using System.Net.Security;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The TLS baseline of <see cref="ChannelHandshakeBenchmarks"/>: a complete TLS 1.3 handshake with mutual
/// certificate authentication (<see cref="TlsPeers"/>), both sides in one process over a fresh in-memory
/// connection (the same crossed pipes the channel uses, as streams), then disposal of both streams.
/// </summary>
[MemoryDiagnoser]
public class TlsHandshakeBenchmarks
{
    private TlsPeers _peers = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _peers = TlsPeers.Create();
        var (client, server) = await _peers.ConnectAsync().ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        await using (server.ConfigureAwait(false))
        {
            TlsPeers.EnsureMutualTls13(client);
            TlsPeers.EnsureMutualTls13(server);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _peers.Dispose();

    [Benchmark]
    public async Task Handshake()
    {
        var (client, server) = await _peers.ConnectAsync().ConfigureAwait(false);
        await client.DisposeAsync().ConfigureAwait(false);
        await server.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// The TLS baseline of <see cref="ChannelThroughputBenchmarks"/>: over one TLS 1.3 connection opened in setup,
/// the client writes one message with a 4-byte big-endian length prefix (one WriteAsync, which SslStream cuts
/// into records of at most 16 KiB), and the server reads the prefix then the whole message into a buffer
/// allocated in setup. <see cref="Cipher"/>: AESGCM is TLS_AES_256_GCM_SHA384 (OpenSSL's first choice);
/// ChaChaPoly is TLS_CHACHA20_POLY1305_SHA256, the channel's own cipher. Like the channel,
/// <see cref="ChannelThroughputBenchmarks.MessagesPerInvoke"/> messages per invocation, reported per message.
/// </summary>
[MemoryDiagnoser]
public class TlsThroughputBenchmarks
{
    private const int PrefixLength = 4;

    private TlsPeers _peers = null!;
    private SslStream _client = null!;
    private SslStream _server = null!;
    private byte[] _outgoing = [];
    private byte[] _incoming = [];
    private readonly byte[] _prefix = new byte[PrefixLength];

    [Params("ChaChaPoly", "AESGCM")]
    public string Cipher { get; set; } = "ChaChaPoly";

    [Params(64, 1024, 65536, 1048576)]
    public int MessageSize { get; set; } = 64;

    [GlobalSetup]
    public async Task Setup()
    {
        var suite = Cipher switch
        {
            "ChaChaPoly" => TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            "AESGCM" => TlsCipherSuite.TLS_AES_256_GCM_SHA384,
            _ => throw new ArgumentException($"Unknown cipher '{Cipher}'."),
        };
        _peers = TlsPeers.Create(suite);
        (_client, _server) = await _peers.ConnectAsync().ConfigureAwait(false);
        if (_client.NegotiatedCipherSuite != suite)
        {
            throw new InvalidOperationException($"Negotiated {_client.NegotiatedCipherSuite}, not {suite}.");
        }

        _outgoing = new byte[PrefixLength + MessageSize];
        BinaryPrimitives.WriteInt32BigEndian(_outgoing, MessageSize);
        RandomNumberGenerator.Fill(_outgoing.AsSpan(PrefixLength));
        _incoming = new byte[MessageSize];

        await WriteRead().ConfigureAwait(false);
        if (!_incoming.AsSpan().SequenceEqual(_outgoing.AsSpan(PrefixLength)))
        {
            throw new InvalidOperationException("The server did not read what the client wrote.");
        }
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _client.DisposeAsync().ConfigureAwait(false);
        await _server.DisposeAsync().ConfigureAwait(false);
        _peers.Dispose();
    }

    [Benchmark(OperationsPerInvoke = ChannelThroughputBenchmarks.MessagesPerInvoke)]
    public async Task<int> WriteRead()
    {
        var received = 0;
        for (var i = 0; i < ChannelThroughputBenchmarks.MessagesPerInvoke; i++)
        {
            var write = _client.WriteAsync(_outgoing);
            await _server.ReadExactlyAsync(_prefix).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadInt32BigEndian(_prefix);
            await _server.ReadExactlyAsync(_incoming.AsMemory(0, length)).ConfigureAwait(false);
            await write.ConfigureAwait(false);
            received += length;
        }

        return received;
    }
}
