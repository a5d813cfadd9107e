using SecureChannels.Protocol.Channel;

namespace SecureChannels.Relay.Hops;

/// <summary>
/// A frame queued toward a hop: either a received message forwarded as is (its circuit id rewritten in place,
/// so forwarding copies nothing) or a frame the relay built.
/// </summary>
internal readonly struct OutboundFrame
{
    private readonly ChannelMessage? _forwarded;
    private readonly byte[]? _built;

    private OutboundFrame(ChannelMessage? forwarded, byte[]? built)
    {
        _forwarded = forwarded;
        _built = built;
    }

    public ReadOnlyMemory<byte> Bytes => _forwarded?.Payload ?? _built;

    public int Length => Bytes.Length;

    public static OutboundFrame Forward(ChannelMessage message) => new(message, null);

    public static OutboundFrame Built(byte[] frame) => new(null, frame);

    public void Release() => _forwarded?.Dispose();
}
