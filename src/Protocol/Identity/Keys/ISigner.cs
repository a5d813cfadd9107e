namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// One Ed25519 signing key, wherever it lives: in memory, unlocked from a <see cref="FileKeyVault"/>, or (later) in a KMS or HSM.
/// Callers can ask for signatures and for the public key; no implementation hands out the private key.
/// </summary>
/// <remarks>
/// Disposing a signer releases the key (for an in-memory key, wipes it). After disposal <see cref="SignAsync"/> throws
/// <see cref="ObjectDisposedException"/>.
/// </remarks>
public interface ISigner : IAsyncDisposable
{
    /// <summary>The 32-byte Ed25519 public key (RFC 8032 encoding).</summary>
    ReadOnlyMemory<byte> PublicKey { get; }

    /// <summary>Signs <paramref name="message"/> with Ed25519 (RFC 8032, pure, no context).</summary>
    /// <param name="message">The bytes to sign.</param>
    /// <param name="signature">Receives the 64-byte signature in its first 64 bytes; must be at least 64 bytes long.</param>
    /// <param name="cancellationToken">Cancels the operation before it starts (a remote signer may also honour it in flight).</param>
    /// <exception cref="ArgumentException"><paramref name="signature"/> is shorter than 64 bytes.</exception>
    /// <exception cref="ObjectDisposedException">The signer was disposed.</exception>
    ValueTask SignAsync(ReadOnlyMemory<byte> message, Memory<byte> signature, CancellationToken cancellationToken = default);
}
