using System.Runtime.InteropServices;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// The few libsodium functions the handshake and the transport call directly, from the same library NSec
/// loads (the libsodium package's native asset). NSec keeps every key and shared secret in its own guarded
/// allocation (sodium_malloc: mmap, mprotect and mlock per object, about eight system calls), which costs more
/// than an X25519 multiplication or a small AEAD call; a handshake makes ten such objects per side. These
/// entry points take the key bytes from a <see cref="PinnedSecret"/> instead.
/// </summary>
/// <remarks>
/// Buffers pass as <c>ref byte</c> to their first element (the runtime pins them for the call), so no unsafe
/// code is needed. Every caller checks lengths before the call: libsodium trusts them.
/// </remarks>
internal static partial class Libsodium
{
    private const string Library = "libsodium";

    static Libsodium()
    {
        // Idempotent and thread-safe; selects the CPU-specific implementations. NSec calls it too, but these
        // entry points may run before any NSec type is touched.
        if (SodiumInit() < 0)
        {
            throw new InvalidOperationException("libsodium could not be initialized.");
        }

        // Only after sodium_init: it is what detects the CPU features this answer depends on.
        Aes256GcmAvailable = Aes256GcmIsAvailable() == 1;
    }

    /// <summary>Whether libsodium's AES-256-GCM can run here (it needs AES-NI and CLMUL).</summary>
    public static bool Aes256GcmAvailable { get; }

    /// <summary>q = n·p (X25519). False when the result is all zeros: p is a low-order point.</summary>
    public static bool ScalarMult(Span<byte> q, ReadOnlySpan<byte> n, ReadOnlySpan<byte> p) =>
        ScalarMultCurve25519(ref MemoryMarshal.GetReference(q), in MemoryMarshal.GetReference(n), in MemoryMarshal.GetReference(p)) == 0;

    /// <summary>q = n·B: the public key of the private key n.</summary>
    public static void ScalarMultBase(Span<byte> q, ReadOnlySpan<byte> n)
    {
        if (ScalarMultCurve25519Base(ref MemoryMarshal.GetReference(q), in MemoryMarshal.GetReference(n)) != 0)
        {
            throw new InvalidOperationException("libsodium refused a base-point multiplication.");
        }
    }

    /// <summary>Seals <paramref name="plaintext"/> into <paramref name="ciphertext"/> (its length) and <paramref name="tag"/> (16 bytes).</summary>
    public static void Seal(AeadKind kind, ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag)
    {
        var result = kind == AeadKind.ChaCha20Poly1305
            ? ChaChaEncryptDetached(ref MemoryMarshal.GetReference(ciphertext), ref MemoryMarshal.GetReference(tag), 0, in MemoryMarshal.GetReference(plaintext), (ulong)plaintext.Length, in MemoryMarshal.GetReference(associatedData), (ulong)associatedData.Length, 0, in MemoryMarshal.GetReference(nonce), in MemoryMarshal.GetReference(key))
            : AesGcmEncryptDetached(ref MemoryMarshal.GetReference(ciphertext), ref MemoryMarshal.GetReference(tag), 0, in MemoryMarshal.GetReference(plaintext), (ulong)plaintext.Length, in MemoryMarshal.GetReference(associatedData), (ulong)associatedData.Length, 0, in MemoryMarshal.GetReference(nonce), in MemoryMarshal.GetReference(key));
        if (result != 0)
        {
            throw new InvalidOperationException("libsodium refused to encrypt.");
        }
    }

    /// <summary>
    /// Checks <paramref name="tag"/> over <paramref name="ciphertext"/> and, only if it holds, writes the
    /// plaintext (the same length). False when authentication fails; libsodium then zeroes the output, so an
    /// in-place ciphertext is gone.
    /// </summary>
    public static bool Open(AeadKind kind, ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext) =>
        (kind == AeadKind.ChaCha20Poly1305
            ? ChaChaDecryptDetached(ref MemoryMarshal.GetReference(plaintext), 0, in MemoryMarshal.GetReference(ciphertext), (ulong)ciphertext.Length, in MemoryMarshal.GetReference(tag), in MemoryMarshal.GetReference(associatedData), (ulong)associatedData.Length, in MemoryMarshal.GetReference(nonce), in MemoryMarshal.GetReference(key))
            : AesGcmDecryptDetached(ref MemoryMarshal.GetReference(plaintext), 0, in MemoryMarshal.GetReference(ciphertext), (ulong)ciphertext.Length, in MemoryMarshal.GetReference(tag), in MemoryMarshal.GetReference(associatedData), (ulong)associatedData.Length, in MemoryMarshal.GetReference(nonce), in MemoryMarshal.GetReference(key))) == 0;

    [DllImport(Library, EntryPoint = "sodium_init")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int SodiumInit();

    [DllImport(Library, EntryPoint = "crypto_aead_aes256gcm_is_available")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int Aes256GcmIsAvailable();

    [DllImport(Library, EntryPoint = "crypto_scalarmult_curve25519")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int ScalarMultCurve25519(ref byte q, in byte n, in byte p);

    [DllImport(Library, EntryPoint = "crypto_scalarmult_curve25519_base")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int ScalarMultCurve25519Base(ref byte q, in byte n);

    [DllImport(Library, EntryPoint = "crypto_aead_chacha20poly1305_ietf_encrypt_detached")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int ChaChaEncryptDetached(ref byte c, ref byte mac, nint macLength, in byte m, ulong mLength, in byte ad, ulong adLength, nint nsec, in byte npub, in byte k);

    [DllImport(Library, EntryPoint = "crypto_aead_chacha20poly1305_ietf_decrypt_detached")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int ChaChaDecryptDetached(ref byte m, nint nsec, in byte c, ulong cLength, in byte mac, in byte ad, ulong adLength, in byte npub, in byte k);

    [DllImport(Library, EntryPoint = "crypto_aead_aes256gcm_encrypt_detached")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int AesGcmEncryptDetached(ref byte c, ref byte mac, nint macLength, in byte m, ulong mLength, in byte ad, ulong adLength, nint nsec, in byte npub, in byte k);

    [DllImport(Library, EntryPoint = "crypto_aead_aes256gcm_decrypt_detached")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int AesGcmDecryptDetached(ref byte m, nint nsec, in byte c, ulong cLength, in byte mac, in byte ad, ulong adLength, in byte npub, in byte k);
}

/// <summary>The two AEADs Noise names (spec §12.3, §12.4).</summary>
internal enum AeadKind
{
    /// <summary>ChaChaPoly: ChaCha20-Poly1305 (RFC 8439).</summary>
    ChaCha20Poly1305,

    /// <summary>AESGCM: AES-256-GCM.</summary>
    Aes256Gcm,
}
