#pragma once
// A real OpenSSH server on 127.0.0.1 for the ssh launcher's tests: its own
// host and user keys in a temporary folder, a client configuration that
// reaches it as `alias` (host key verified through known_hosts, never
// skipped) and "unreachable-node" (a port where nothing listens).

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QString>
#include <QTemporaryDir>

#include <unistd.h>

namespace partita::test {

struct Sshd
{
    QTemporaryDir dir;
    QProcess proc;
    QString config; // client configuration naming the host "partita-node"
    int port = 0;
    QString error;

    bool start(const QString& alias = "partita-node")
    {
        const QString sshd = "/usr/sbin/sshd";
        if (!QFile::exists(sshd)) {
            error = "no /usr/sbin/sshd (packaging/install-deps.sh installs openssh-server)";
            return false;
        }
        const QString d = dir.path();
        for (const char* key : {"host_key", "user_key"}) {
            QProcess kg;
            kg.start("ssh-keygen", {"-q", "-t", "ed25519", "-N", "", "-f", d + "/" + key});
            if (!kg.waitForFinished(30000) || kg.exitCode() != 0) {
                error = "ssh-keygen failed: " + QString::fromUtf8(kg.readAllStandardError());
                return false;
            }
        }
        QFile::copy(d + "/user_key.pub", d + "/authorized_keys");
        if (geteuid() == 0)
            QDir().mkpath("/run/sshd"); // privilege separation directory sshd wants as root
        const QString user = qEnvironmentVariable("USER", geteuid() == 0 ? "root" : "");
        for (int attempt = 0; attempt < 20; ++attempt) {
            port = 20000 + int((getpid() * 7 + attempt * 7919) % 30000);
            QFile cfg(d + "/sshd_config");
            cfg.open(QIODevice::WriteOnly | QIODevice::Truncate);
            cfg.write(QString("Port %1\nListenAddress 127.0.0.1\nHostKey %2/host_key\nAuthorizedKeysFile %2/authorized_keys\n"
                              "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
                              "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile %2/sshd.pid\n"
                              "Subsystem sftp /usr/lib/openssh/sftp-server\n")
                          .arg(port)
                          .arg(d)
                          .toUtf8());
            cfg.close();
            proc.start(sshd, {"-D", "-e", "-f", d + "/sshd_config"});
            if (!proc.waitForStarted(10000)) {
                error = "sshd did not start";
                return false;
            }
            if (proc.waitForFinished(700)) { // exited at once: the port is taken, or the configuration is refused
                error = QString::fromUtf8(proc.readAllStandardError());
                continue;
            }
            break;
        }
        if (proc.state() != QProcess::Running)
            return false;
        // The host key goes into known_hosts under the alias: verified, never skipped.
        QFile hk(d + "/host_key.pub");
        hk.open(QIODevice::ReadOnly);
        const QList<QByteArray> parts = hk.readAll().split(' ');
        QFile kh(d + "/known_hosts");
        kh.open(QIODevice::WriteOnly);
        kh.write(alias.toUtf8() + " " + parts.value(0) + " " + parts.value(1) + "\n");
        kh.close();
        config = d + "/ssh_config";
        QFile sc(config);
        sc.open(QIODevice::WriteOnly);
        sc.write(QString("Host %1\n  HostName 127.0.0.1\n  Port %2\n%3  IdentityFile %4/user_key\n  IdentitiesOnly yes\n"
                         "  UserKnownHostsFile %4/known_hosts\n  HostKeyAlias %1\n"
                         "Host unreachable-node\n  HostName 127.0.0.1\n  Port 1\n  IdentityFile %4/user_key\n"
                         "  UserKnownHostsFile %4/known_hosts\n  HostKeyAlias %1\n")
                     .arg(alias)
                     .arg(port)
                     .arg(user.isEmpty() ? QString() : "  User " + user + "\n")
                     .arg(d)
                     .toUtf8());
        sc.close();
        return true;
    }
    ~Sshd()
    {
        if (proc.state() == QProcess::Running) {
            proc.terminate();
            proc.waitForFinished(5000);
        }
    }
};

} // namespace partita::test
