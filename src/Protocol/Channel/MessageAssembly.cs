using System.Buffers;
using System.Diagnostics;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// Reassembles one message from its fragments into a pooled buffer that grows by doubling, refusing to grow
/// past the size limit (so a peer cannot make this side buffer more than one maximal message).
/// </summary>
internal sealed class MessageAssembly(int maxMessageSize) : IDisposable
{
    private const int FirstBufferRecords = 16;

    private byte[]? _buffer;
    private int _length;

    /// <summary>Whether no fragment of a message is waiting: the next DATA_LAST is a message of one record.</summary>
    public bool IsEmpty => _length == 0 && _buffer is null;

    public void Append(ReadOnlySpan<byte> fragment)
    {
        CheckFits(fragment.Length);

        if (_buffer is null || _buffer.Length - _length < fragment.Length)
        {
            // A message of several records is a large one: the first buffer holds 16 records' worth (up to the
            // limit), so a message of up to 1 MiB is never copied into a bigger buffer on the way.
            var wanted = _buffer is null
                ? Math.Min(maxMessageSize, Math.Max(fragment.Length, fragment.Length * FirstBufferRecords))
                : Math.Max(_length + fragment.Length, Math.Min(maxMessageSize, _buffer.Length * 2));
            var next = ArrayPool<byte>.Shared.Rent(wanted);
            if (_buffer is not null)
            {
                _buffer.AsSpan(0, _length).CopyTo(next);
                Release(_buffer, _length);
            }

            _buffer = next;
        }

        fragment.CopyTo(_buffer.AsSpan(_length));
        _length += fragment.Length;
    }

    /// <summary>
    /// A message of one record, in the pooled buffer it was decrypted into, which goes with it: no copy. Only
    /// when <see cref="IsEmpty"/>.
    /// </summary>
    public ChannelMessage Single(byte[] buffer, int offset, int length)
    {
        Debug.Assert(IsEmpty, "A message of one record follows no fragment.");
        CheckFits(length);
        return new ChannelMessage(buffer, offset, length);
    }

    /// <summary>Hands the assembled message over (its buffer goes with it) and starts afresh.</summary>
    public ChannelMessage Complete()
    {
        var message = new ChannelMessage(_buffer ?? ArrayPool<byte>.Shared.Rent(1), 0, _length);
        (_buffer, _length) = (null, 0);
        return message;
    }

    private void CheckFits(int fragmentLength)
    {
        if ((long)_length + fragmentLength > maxMessageSize)
        {
            throw new SecureChannelException(ChannelErrorCode.MessageTooLarge, $"The peer's message exceeds the {maxMessageSize}-byte limit.");
        }
    }

    public void Dispose()
    {
        if (_buffer is not null)
        {
            Release(_buffer, _length);
            _buffer = null;
        }
    }

    /// <summary>
    /// Returns a pooled buffer that held message bytes in its first <paramref name="used"/> bytes, wiped: the pool
    /// is the process's, and what was decrypted must not outlive its use. Only the used part is wiped; the rest
    /// never held anything of ours.
    /// </summary>
    internal static void Release(byte[] buffer, int used)
    {
        buffer.AsSpan(0, used).Clear();
        ArrayPool<byte>.Shared.Return(buffer);
    }
}
