using System.Buffers;
using System.Diagnostics;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// Reassembles one message from the bodies of its DATA records, decrypted in place: each record after the first is
/// decrypted straight behind the bodies already assembled, so no body is copied. Refuses to grow past the size
/// limit (a peer cannot make this side buffer more than one maximal message and one record).
/// </summary>
/// <remarks>
/// Layout of the pooled buffer: index 0 is the first record's type byte, then the message bytes. A further record is
/// decrypted at the index of the last message byte, so its body lands right after the message: its type byte borrows
/// that last byte, which <see cref="ReturnBorrowedByte"/> puts back once the type has been read.
/// </remarks>
internal sealed class MessageAssembly(int maxMessageSize) : IDisposable
{
    // A message of several records is a large one: when the first buffer is outgrown, the next holds 16 records'
    // worth (up to the limit), so a message of up to 1 MiB is copied into a bigger buffer at most once.
    private const int GrowthRecords = 16;

    private byte[]? _buffer;
    private int _length;
    private int _written;
    private byte _borrowed;

    /// <summary>Whether no fragment of a message is waiting: the next DATA_LAST is a message of one record.</summary>
    public bool IsEmpty => _buffer is null;

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

    /// <summary>
    /// Starts a message with its first DATA_MORE record, decrypted at index 0 of <paramref name="buffer"/> (a pooled
    /// buffer that now belongs to the assembly). Only when <see cref="IsEmpty"/>.
    /// </summary>
    public void Adopt(byte[] buffer, int bodyLength)
    {
        Debug.Assert(IsEmpty, "A message starts once.");
        CheckFits(bodyLength);
        (_buffer, _length, _written) = (buffer, bodyLength, ChannelFraming.RecordHeaderLength + bodyLength);
    }

    /// <summary>
    /// Where the next record (<paramref name="plaintextLength"/> bytes, type byte included) is to be decrypted, while a
    /// message is being assembled: the buffer and the index of the type byte. Call <see cref="ReturnBorrowedByte"/>
    /// once the type is read, then <see cref="Commit"/> if the record was DATA.
    /// </summary>
    public (byte[] Buffer, int Start) ReserveRecord(int plaintextLength)
    {
        Debug.Assert(_buffer is not null, "A message is being assembled.");
        var start = _length;
        var needed = start + plaintextLength;
        if (_buffer.Length < needed)
        {
            var limit = maxMessageSize + plaintextLength;
            var next = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Min(limit, Math.Max(_buffer.Length * 2, GrowthRecords * plaintextLength))));
            _buffer.AsSpan(0, _written).CopyTo(next);
            Release(_buffer, _written);
            _buffer = next;
        }

        _borrowed = _buffer[start];
        _written = Math.Max(_written, needed);
        return (_buffer, start);
    }

    /// <summary>Puts back the message byte the reserved record's type byte borrowed.</summary>
    public void ReturnBorrowedByte() => _buffer![_length] = _borrowed;

    /// <summary>Takes the reserved record's body (a DATA record) into the message.</summary>
    public void Commit(int bodyLength)
    {
        CheckFits(bodyLength);
        _length += bodyLength;
    }

    /// <summary>Hands the assembled message over (its buffer goes with it) and starts afresh.</summary>
    public ChannelMessage Complete()
    {
        Debug.Assert(_buffer is not null, "A message is being assembled.");
        var end = ChannelFraming.RecordHeaderLength + _length;

        // Beyond the message: whatever other records were decrypted there (a credential update) is not its to carry.
        _buffer.AsSpan(end, Math.Max(0, _written - end)).Clear();
        var message = new ChannelMessage(_buffer, ChannelFraming.RecordHeaderLength, _length);
        (_buffer, _length, _written) = (null, 0, 0);
        return message;
    }

    public void Dispose()
    {
        if (_buffer is not null)
        {
            Release(_buffer, _written);
            _buffer = null;
        }
    }

    /// <summary>
    /// Returns a pooled buffer that held decrypted bytes in its first <paramref name="used"/> bytes, wiped: the pool
    /// is the process's, and what was decrypted must not outlive its use. Only the used part is wiped; the rest
    /// never held anything of ours.
    /// </summary>
    internal static void Release(byte[] buffer, int used)
    {
        buffer.AsSpan(0, used).Clear();
        ArrayPool<byte>.Shared.Return(buffer);
    }

    private void CheckFits(int bodyLength)
    {
        if ((long)_length + bodyLength > maxMessageSize)
        {
            throw new SecureChannelException(ChannelErrorCode.MessageTooLarge, $"The peer's message exceeds the {maxMessageSize}-byte limit.");
        }
    }
}
