using System.Buffers;
using BenchmarkDotNet.Attributes;
using SecureChannels.Protocol.Messaging;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The agent message layer's per-message work (docs/protocol.md §11): reading the kind of a BYTES message, which is
/// the byte-message hot path and must not allocate, and writing and reading the header of a REQUEST, which carries a
/// type name and so allocates its strings.
/// </summary>
[MemoryDiagnoser]
public class MessageEnvelopeBenchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(256);
    private readonly MessageHeader _request = MessageHeader.ForRequest(4711, "billing.quote.v1", TimeSpan.FromSeconds(30), Guid.NewGuid(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    private byte[] _bytesMessage = [];
    private byte[] _requestMessage = [];

    [GlobalSetup]
    public void Setup()
    {
        _bytesMessage = new byte[1025];
        var writer = new ArrayBufferWriter<byte>();
        MessageEnvelope.WriteHeader(writer, _request);
        _requestMessage = [.. writer.WrittenSpan, 0xa5, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o'];
    }

    /// <summary>The kind of a 1 KiB byte message, and where its body starts.</summary>
    [Benchmark(Baseline = true)]
    public int ReadBytesHeader()
    {
        MessageEnvelope.ReadHeader(_bytesMessage, out var bodyOffset);
        return bodyOffset;
    }

    /// <summary>A REQUEST header decoded, limits and canonical form checked.</summary>
    [Benchmark]
    public int ReadRequestHeader()
    {
        var header = MessageEnvelope.ReadHeader(_requestMessage, out var bodyOffset);
        return bodyOffset + (int)header.RequestId;
    }

    /// <summary>A REQUEST header encoded into a reused buffer.</summary>
    [Benchmark]
    public int WriteRequestHeader()
    {
        _output.ResetWrittenCount();
        MessageEnvelope.WriteHeader(_output, _request);
        return _output.WrittenCount;
    }
}
