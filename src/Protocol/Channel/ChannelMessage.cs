namespace SecureChannels.Protocol.Channel;

/// <summary>
/// A received application message. Its bytes live in a pooled buffer: read them, then dispose the message
/// to return the buffer (an undisposed message is only garbage, never a leak of another message's bytes).
/// </summary>
public sealed class ChannelMessage : IDisposable
{
    private byte[]? _buffer;
    private readonly int _offset;
    private readonly int _length;

    internal ChannelMessage(byte[] buffer, int offset, int length)
    {
        _buffer = buffer;
        _offset = offset;
        _length = length;
    }

    /// <summary>The message bytes; valid until <see cref="Dispose"/>.</summary>
    public ReadOnlyMemory<byte> Payload
    {
        get
        {
            ObjectDisposedException.ThrowIf(_buffer is null, this);
            return _buffer.AsMemory(_offset, _length);
        }
    }

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            MessageAssembly.Release(buffer, _offset + _length);
        }
    }
}
