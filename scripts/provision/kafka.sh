#!/usr/bin/env bash
# Provision Apache Kafka (KRaft-capable broker) jars from Maven Central for
# integration tests. Idempotent: a stamp file marks a complete download.
#
#   NODEWARDEN_CACHE   cache root (default: $HOME/.cache/nodewarden)
#   KAFKA_VERSION      Kafka version (default: 3.9.2, latest 3.9 patch)
#
# Prints the libs directory on the last stdout line, suitable for
# NODEWARDEN_KAFKA_LIBS.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
SCALA_BINARY="2.13"
SLF4J_VERSION="1.7.36"   # Kafka 3.9 ships slf4j 1.7.x + reload4j
DEP_PLUGIN_VERSION="3.6.1"

CACHE_ROOT="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
BASE="$CACHE_ROOT/kafka/$KAFKA_VERSION"
LIBS="$BASE/libs"
STAMP="$BASE/.provisioned"
# Bump when the dependency set below changes, so old caches are refreshed.
STAMP_CONTENT="kafka=$KAFKA_VERSION scala=$SCALA_BINARY slf4j=$SLF4J_VERSION rev=1"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" ]] && compgen -G "$LIBS/kafka_${SCALA_BINARY}-*.jar" >/dev/null; then
  echo "$LIBS"
  exit 0
fi

command -v java >/dev/null || { echo "kafka.sh: java not found (need a JRE >= 11; e.g. apt-get install -y openjdk-17-jre-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "kafka.sh: mvn not found (apt-get install -y maven)" >&2; exit 1; }

mkdir -p "$BASE"
# Serialise concurrent provisioning (parallel test processes); re-check after the lock.
if command -v flock >/dev/null; then
  exec 9>"$BASE/.lock"
  flock 9
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" ]]; then
    echo "$LIBS"
    exit 0
  fi
fi
WORK="$(mktemp -d "$BASE/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.nodewarden.provision</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- Broker (kafka.Kafka) and StorageTool; its runtime deps pull in
         kafka-server, -storage, -metadata, -raft, -group-coordinator,
         -transaction-coordinator, jackson modules, scala, etc. -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_BINARY}</artifactId>
      <version>${KAFKA_VERSION}</version>
      <exclusions>
        <!-- ZooKeeper's logging backend would compete with reload4j. -->
        <exclusion><groupId>ch.qos.logback</groupId><artifactId>*</artifactId></exclusion>
        <exclusion><groupId>log4j</groupId><artifactId>log4j</artifactId></exclusion>
        <exclusion><groupId>org.slf4j</groupId><artifactId>slf4j-log4j12</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- Logging binding used by the Kafka distribution (log4j.properties). -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>${SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>${DEP_PLUGIN_VERSION}</version>
      </plugin>
    </plugins>
  </build>
</project>
POM

echo "kafka.sh: resolving Kafka $KAFKA_VERSION jars from Maven Central..." >&2
mkdir -p "$WORK/libs"
( cd "$WORK" && mvn -q -B -Dstyle.color=never -f pom.xml dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$WORK/libs" ) >&2

compgen -G "$WORK/libs/kafka_${SCALA_BINARY}-${KAFKA_VERSION}.jar" >/dev/null \
  || { echo "kafka.sh: kafka_${SCALA_BINARY}-${KAFKA_VERSION}.jar missing after resolution" >&2; exit 1; }

cp "$WORK/pom.xml" "$BASE/pom.xml"
rm -rf "$LIBS"
mv "$WORK/libs" "$LIBS"
printf '%s' "$STAMP_CONTENT" >"$STAMP"
echo "kafka.sh: $(ls "$LIBS" | wc -l) jars, $(du -sh "$LIBS" | cut -f1) in $LIBS" >&2
echo "$LIBS"
