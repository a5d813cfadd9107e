using System.Buffers;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// Reassembles one message from its fragments into a pooled buffer that grows by doubling, refusing to grow
/// past the size limit (so a peer cannot make this side buffer more than one maximal message).
/// </summary>
internal sealed class MessageAssembly(int maxMessageSize) : IDisposable
{
    private byte[]? _buffer;
    private int _length;

    public void Append(ReadOnlySpan<byte> fragment)
    {
        if ((long)_length + fragment.Length > maxMessageSize)
        {
            throw new SecureChannelException(ChannelErrorCode.MessageTooLarge, $"The peer's message exceeds the {maxMessageSize}-byte limit.");
        }

        if (_buffer is null || _buffer.Length - _length < fragment.Length)
        {
            var next = ArrayPool<byte>.Shared.Rent(Math.Max(_length + fragment.Length, Math.Min(maxMessageSize, (_buffer?.Length ?? 0) * 2)));
            if (_buffer is not null)
            {
                _buffer.AsSpan(0, _length).CopyTo(next);
                ArrayPool<byte>.Shared.Return(_buffer, clearArray: true);
            }

            _buffer = next;
        }

        fragment.CopyTo(_buffer.AsSpan(_length));
        _length += fragment.Length;
    }

    /// <summary>Hands the assembled message over (its buffer goes with it) and starts afresh.</summary>
    public ChannelMessage Complete()
    {
        var message = new ChannelMessage(_buffer ?? ArrayPool<byte>.Shared.Rent(1), 0, _length);
        (_buffer, _length) = (null, 0);
        return message;
    }

    public void Dispose()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer, clearArray: true);
            _buffer = null;
        }
    }
}
