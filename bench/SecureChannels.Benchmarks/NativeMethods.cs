using System.Runtime.InteropServices;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The bare libsodium functions under NSec's X25519 and Ed25519, for a baseline without NSec's key objects: every NSec
/// <c>Key</c> and <c>SharedSecret</c> lives in sodium_malloc's guarded memory (mmap, mprotect, mlock per
/// object), which these calls skip. The library is the one NSec loads, from the libsodium package.
/// </summary>
internal static class NativeMethods
{
    private const string Libsodium = "libsodium";

    /// <summary>Idempotent; picks the CPU-specific implementations. Returns 0, or 1 when already done.</summary>
    [DllImport(Libsodium, EntryPoint = "sodium_init")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern int SodiumInit();

    /// <summary>q = n·p; returns -1 when the result is all zeros (a low-order p).</summary>
    [DllImport(Libsodium, EntryPoint = "crypto_scalarmult_curve25519")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern int ScalarMult(byte[] q, byte[] n, byte[] p);

    /// <summary>q = n·B: the public key of private key n.</summary>
    [DllImport(Libsodium, EntryPoint = "crypto_scalarmult_curve25519_base")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern int ScalarMultBase(byte[] q, byte[] n);

    /// <summary>Fills <paramref name="buffer"/> with <paramref name="size"/> random bytes (libsodium's generator, as NSec's key creation uses).</summary>
    [DllImport(Libsodium, EntryPoint = "randombytes_buf")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern void RandomBytes(byte[] buffer, nuint size);

    /// <summary>Ed25519 verification of a detached 64-byte signature; returns 0 when it holds, -1 otherwise.</summary>
    [DllImport(Libsodium, EntryPoint = "crypto_sign_ed25519_verify_detached")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern int Ed25519VerifyDetached(byte[] signature, byte[] message, ulong messageLength, byte[] publicKey);
}
