using System.Buffers;
using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// A peer that completes a genuine handshake (so it holds the transport keys) and then writes whatever records
/// a test asks for, well encrypted but not necessarily well formed.
/// </summary>
internal sealed class RoguePeer : IDisposable
{
    private readonly IDuplexPipe _pipe;
    private readonly NoiseTransport _transport;

    private RoguePeer(IDuplexPipe pipe, NoiseTransport transport)
    {
        _pipe = pipe;
        _transport = transport;
    }

    /// <summary>Runs the handshake as the responder, without sending ACCEPT.</summary>
    public static async Task<RoguePeer> RespondAsync(IDuplexPipe pipe, SecureChannelOptions options)
    {
        var result = await ChannelHandshake.RunAsync(pipe, options, isInitiator: false, CancellationToken.None);
        return new RoguePeer(pipe, result.Transport);
    }

    /// <summary>Encrypts and sends one record: the type byte, then <paramref name="body"/>.</summary>
    public async Task SendRecordAsync(byte type, ReadOnlyMemory<byte> body)
    {
        var record = new byte[1 + body.Length];
        record[0] = type;
        body.Span.CopyTo(record.AsSpan(1));
        var message = new byte[record.Length + NoiseConstants.TagLength];
        var length = _transport.Write(record, message);
        await SendFrameAsync(_pipe.Output, message.AsMemory(0, length));
    }

    /// <summary>Sends a transport message whose plaintext is empty: no record type at all.</summary>
    public async Task SendEmptyMessageAsync()
    {
        var message = new byte[NoiseConstants.TagLength];
        var length = _transport.Write(default, message);
        await SendFrameAsync(_pipe.Output, message.AsMemory(0, length));
    }

    public static async Task SendFrameAsync(PipeWriter output, ReadOnlyMemory<byte> body)
    {
        var header = new byte[LengthPrefixedFrame.HeaderLength];
        LengthPrefixedFrame.WriteHeader(header, body.Length);
        output.Write(header);
        output.Write(body.Span);
        await output.FlushAsync();
    }

    public void Dispose() => _transport.Dispose();
}
