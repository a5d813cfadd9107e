using System.Security.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// A short secret (a private key or a cipher key) in an array the garbage collector never moves, so no stale
/// copy is left behind in memory it compacted; wiped on <see cref="Dispose"/>, and by the finalizer if its
/// owner was never disposed.
/// </summary>
/// <remarks>
/// Unlike NSec's keys it is not mlocked or fenced by guard pages: those cost several system calls per key,
/// more than the X25519 or AEAD work a handshake key is made for, and it lives for one handshake or one
/// channel. Long-lived identity keys stay in NSec.
/// </remarks>
internal sealed class PinnedSecret : IDisposable
{
    private readonly byte[] _bytes;
    private bool _disposed;

    public PinnedSecret(int length) => _bytes = GC.AllocateArray<byte>(length, pinned: true);

    ~PinnedSecret() => CryptographicOperations.ZeroMemory(_bytes);

    /// <summary>The bytes, to fill or to use.</summary>
    /// <exception cref="ObjectDisposedException">The secret was wiped.</exception>
    public Span<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _bytes;
        }
    }

    public void Dispose()
    {
        _disposed = true;
        CryptographicOperations.ZeroMemory(_bytes);
        GC.SuppressFinalize(this);
    }

    /// <summary>Never shows the bytes.</summary>
    public override string ToString() => nameof(PinnedSecret);
}
