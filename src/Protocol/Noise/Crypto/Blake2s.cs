using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// BLAKE2s (RFC 7693): the 32-bit BLAKE2 variant with a 64-byte block and up to 32 bytes of output,
/// optionally keyed with up to 32 bytes.
/// </summary>
/// <remarks>
/// It exists because the Noise "BLAKE2s" hash function (HASHLEN 32, BLOCKLEN 64) is not offered by
/// NSec/libsodium, which only ship BLAKE2b. The state is a plain value type with fixed-size inline
/// buffers so that hashing never allocates; being a mutable struct, it must be passed by reference and
/// never copied while in use, or the copies would diverge.
/// </remarks>
internal struct Blake2s
{
    /// <summary>The compression block size in bytes (BLOCKLEN).</summary>
    public const int BlockSize = 64;

    /// <summary>The largest output length in bytes (HASHLEN for Noise).</summary>
    public const int MaxHashSize = 32;

    /// <summary>The largest key length in bytes.</summary>
    public const int MaxKeySize = 32;

    private const int Rounds = 10;

    private Words _h;
    private Block _buffer;

    // RFC 7693 calls this t: the number of message bytes fed into compressions so far, including the
    // one being compressed. 64 bits wide because the spec defines it so, even though Noise never hashes
    // anything near 4 GiB.
    private ulong _bytesCompressed;

    private int _bufferLength;

    // Zero means "not initialized" or "already finalized"; any valid state has 1..32 here.
    private int _hashSize;

    private static ReadOnlySpan<uint> IV =>
    [
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
        0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
    ];

    // The message schedule: row r gives the order in which round r reads the 16 message words.
    private static ReadOnlySpan<byte> Sigma =>
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
        11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
        7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
        9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
        2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
        12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
        13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
        6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
        10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
    ];

    /// <summary>
    /// Initializes an incremental hash with the given output length and optional key.
    /// </summary>
    /// <param name="state">Receives the initialized state; keep it in one place and pass it by reference.</param>
    /// <param name="hashSize">The output length in bytes, 1 to <see cref="MaxHashSize"/>.</param>
    /// <param name="key">An optional key of 0 to <see cref="MaxKeySize"/> bytes; empty means unkeyed.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="hashSize"/> is outside 1..32.</exception>
    /// <exception cref="ArgumentException"><paramref name="key"/> is longer than 32 bytes.</exception>
    public static void Initialize(out Blake2s state, int hashSize = MaxHashSize, ReadOnlySpan<byte> key = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(hashSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(hashSize, MaxHashSize);
        if (key.Length > MaxKeySize)
        {
            throw new ArgumentException($"A BLAKE2s key is at most {MaxKeySize} bytes.", nameof(key));
        }

        state = default;
        IV.CopyTo(state._h);

        // Only the first parameter-block word differs from zero for sequential hashing without salt or
        // personalization: digest length, key length, fanout 1 and depth 1.
        state._h[0] ^= 0x01010000u | ((uint)key.Length << 8) | (uint)hashSize;
        state._hashSize = hashSize;

        if (!key.IsEmpty)
        {
            // The key, zero-padded to a whole block, is hashed as the first block of the message. It is
            // left buffered like any other full block so that a keyed hash of empty input still ends with
            // this block compressed under the final flag.
            key.CopyTo(state._buffer);
            state._bufferLength = BlockSize;
        }
    }

    /// <summary>
    /// Absorbs more input; may be called any number of times with inputs of any length, including empty.
    /// </summary>
    /// <param name="data">The next part of the message.</param>
    /// <exception cref="InvalidOperationException">The state was never initialized or is already finalized.</exception>
    public void Update(ReadOnlySpan<byte> data)
    {
        ThrowIfNotInitialized();
        if (data.IsEmpty)
        {
            return;
        }

        Span<byte> buffer = _buffer;
        var room = BlockSize - _bufferLength;

        // A buffered block may only be compressed once it is certain not to be the last one, that is when
        // at least one more byte follows it; hence strictly greater, and a full buffer waits for more data.
        if (data.Length > room)
        {
            data[..room].CopyTo(buffer[_bufferLength..]);
            _bytesCompressed += BlockSize;
            Compress(ref _h, buffer, _bytesCompressed, isLastBlock: false);
            _bufferLength = 0;
            data = data[room..];

            while (data.Length > BlockSize)
            {
                _bytesCompressed += BlockSize;
                Compress(ref _h, data[..BlockSize], _bytesCompressed, isLastBlock: false);
                data = data[BlockSize..];
            }
        }

        data.CopyTo(buffer[_bufferLength..]);
        _bufferLength += data.Length;
    }

    /// <summary>
    /// Completes the hash, writes exactly the configured number of bytes to the start of
    /// <paramref name="output"/> and wipes the state, which cannot be used again until re-initialized.
    /// </summary>
    /// <param name="output">The destination; at least as long as the configured hash size.</param>
    /// <exception cref="ArgumentException"><paramref name="output"/> is shorter than the hash size.</exception>
    /// <exception cref="InvalidOperationException">The state was never initialized or is already finalized.</exception>
    public void Finalize(Span<byte> output)
    {
        ThrowIfNotInitialized();
        if (output.Length < _hashSize)
        {
            // Checked before touching the state, so the caller can retry with a proper buffer.
            throw new ArgumentException($"The output must be at least {_hashSize} bytes.", nameof(output));
        }

        Span<byte> buffer = _buffer;
        _bytesCompressed += (ulong)_bufferLength;
        buffer[_bufferLength..].Clear();
        Compress(ref _h, buffer, _bytesCompressed, isLastBlock: true);

        // Serialized through a full-size scratch buffer because the output length need not be a whole
        // number of words; the scratch copy is wiped like the rest of the state.
        Span<byte> digest = stackalloc byte[MaxHashSize];
        for (var i = 0; i < 8; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(digest[(i * 4)..], _h[i]);
        }

        digest[.._hashSize].CopyTo(output);
        CryptographicOperations.ZeroMemory(digest);

        // The chain value would let anyone extend the message, and the buffer may still hold the key
        // block or message bytes; wipe both, and the counters so a reused state is detected.
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes((Span<uint>)_h));
        CryptographicOperations.ZeroMemory(buffer);
        _bytesCompressed = 0;
        _bufferLength = 0;
        _hashSize = 0;
    }

    /// <summary>Computes the unkeyed 32-byte BLAKE2s hash of <paramref name="data"/> in one call.</summary>
    /// <param name="data">The message.</param>
    /// <param name="output">The destination; at least <see cref="MaxHashSize"/> bytes, of which the first 32 are written.</param>
    /// <exception cref="ArgumentException"><paramref name="output"/> is shorter than 32 bytes.</exception>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> output)
    {
        // Checked up front so that a bad call does not leave a half-used state with message bytes in it
        // on the stack.
        if (output.Length < MaxHashSize)
        {
            throw new ArgumentException($"The output must be at least {MaxHashSize} bytes.", nameof(output));
        }

        Initialize(out Blake2s state);
        state.Update(data);
        state.Finalize(output);
    }

    private readonly void ThrowIfNotInitialized()
    {
        if (_hashSize == 0)
        {
            throw new InvalidOperationException(
                "The BLAKE2s state is not initialized or has already been finalized.");
        }
    }

    private static void Compress(ref Words h, ReadOnlySpan<byte> block, ulong bytesCompressed, bool isLastBlock)
    {
        Message m = default;
        Span<uint> words = m;
        for (var i = 0; i < 16; i++)
        {
            words[i] = BinaryPrimitives.ReadUInt32LittleEndian(block[(i * 4)..]);
        }

        uint v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3];
        uint v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
        uint v8 = IV[0], v9 = IV[1], v10 = IV[2], v11 = IV[3];
        uint v12 = IV[4] ^ (uint)bytesCompressed;
        uint v13 = IV[5] ^ (uint)(bytesCompressed >> 32);
        uint v14 = isLastBlock ? ~IV[6] : IV[6];
        uint v15 = IV[7];

        ReadOnlySpan<byte> sigma = Sigma;
        for (var round = 0; round < Rounds; round++)
        {
            ReadOnlySpan<byte> s = sigma.Slice(round * 16, 16);

            // Columns, then diagonals.
            G(ref v0, ref v4, ref v8, ref v12, words[s[0]], words[s[1]]);
            G(ref v1, ref v5, ref v9, ref v13, words[s[2]], words[s[3]]);
            G(ref v2, ref v6, ref v10, ref v14, words[s[4]], words[s[5]]);
            G(ref v3, ref v7, ref v11, ref v15, words[s[6]], words[s[7]]);
            G(ref v0, ref v5, ref v10, ref v15, words[s[8]], words[s[9]]);
            G(ref v1, ref v6, ref v11, ref v12, words[s[10]], words[s[11]]);
            G(ref v2, ref v7, ref v8, ref v13, words[s[12]], words[s[13]]);
            G(ref v3, ref v4, ref v9, ref v14, words[s[14]], words[s[15]]);
        }

        h[0] ^= v0 ^ v8;
        h[1] ^= v1 ^ v9;
        h[2] ^= v2 ^ v10;
        h[3] ^= v3 ^ v11;
        h[4] ^= v4 ^ v12;
        h[5] ^= v5 ^ v13;
        h[6] ^= v6 ^ v14;
        h[7] ^= v7 ^ v15;

        // The message words may be the key block; do not leave a copy of them on the stack.
        CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(words));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void G(ref uint a, ref uint b, ref uint c, ref uint d, uint x, uint y)
    {
        a = a + b + x;
        d = BitOperations.RotateRight(d ^ a, 16);
        c += d;
        b = BitOperations.RotateRight(b ^ c, 12);
        a = a + b + y;
        d = BitOperations.RotateRight(d ^ a, 8);
        c += d;
        b = BitOperations.RotateRight(b ^ c, 7);
    }

    /// <summary>The eight-word chain value, stored inline so the state needs no heap allocation.</summary>
    [InlineArray(8)]
    private struct Words
    {
        private uint _element0;
    }

    /// <summary>The 64-byte block buffer, stored inline so the state needs no heap allocation.</summary>
    [InlineArray(BlockSize)]
    private struct Block
    {
        private byte _element0;
    }

    /// <summary>The sixteen message words of one block, a stack scratch area for compression.</summary>
    [InlineArray(16)]
    private struct Message
    {
        private uint _element0;
    }
}
