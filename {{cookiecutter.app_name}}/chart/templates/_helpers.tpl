{{/*
Names and labels shared by every template, as `helm create` writes them: change a label
here and every object follows.

The helpers are named `app.*`, not `<chart name>.*` as `helm create` names them: the chart is
generated for one application and deployed on its own (it has no subcharts and is nobody's
subchart), so no other chart's helpers share its render and a fixed prefix cannot clash. It
keeps every template the same text in every generated project, which lets `cruft update`
merge the template's changes into them.

Every object sets `metadata.namespace` to the release's namespace: the pipeline deploys each
hostspace into a namespace of its own (<appcode>-<hostspace>) from what `helm template
--namespace` renders, and `helm template` writes no namespace into an object whose template
leaves it out, so such an object would land in whatever namespace the tool that applies the
manifests defaults to.
*/}}

{{/*
The values every template reads, in three layers: the platform's defaults (defaults.yaml, the
template's file), the team's values.yaml (every hostspace), the hostspace's
values-<hostspace>.yaml, each over the one before. helm itself knows only one file of defaults,
a chart's values.yaml, and that file is the team's: the pipeline deploys `-f values.yaml -f
values-<hostspace>.yaml`. So helm hands the templates the team's values alone (the -f files and
any --set, already checked by values.schema.json), and each template starts with
`include "app.init" .`, which lays them over defaults.yaml and puts the result in .Values:
every template, and every helper below, reads .Values as if helm had merged the layers. The
first template helm renders does it; the root context carries the mark that it is done (helm
gives every template of a chart the same one, and helm-unittest a fresh one per test).

Maps merge key by key and lists and scalars replace, as helm's own -f does; a null the team's
files leave (helm keeps one for a key that the chart's values.yaml does not set) never removes
a default. A null in values-<hostspace>.yaml for a key that values.yaml sets removes the team's
value (helm's coalesce), so the default applies again there.
*/}}
{{- define "app.init" -}}
{{- if not (hasKey . "appValuesLayered") }}
{{- $defaults := .Files.Get "defaults.yaml" | fromYaml }}
{{- if not $defaults }}
{{- fail "defaults.yaml, the platform's defaults, is missing from the chart (or .helmignore leaves it out)" }}
{{- else if hasKey $defaults "Error" }}
{{- fail (printf "defaults.yaml, the platform's defaults, is not YAML: %s" (get $defaults "Error")) }}
{{- end }}
{{- include "app.layer" (dict "onto" $defaults "values" .Values) }}
{{- $_ := set . "Values" $defaults }}
{{- $_ := set . "appValuesLayered" true }}
{{- end }}
{{- end }}

{{/*
Lays `values` onto `onto` (a map, changed in place): a map merges key by key, anything else
replaces what `onto` holds, and a null is skipped, at every depth.
*/}}
{{- define "app.layer" -}}
{{- $onto := .onto }}
{{- range $key, $value := .values }}
{{- if kindIs "map" $value }}
{{- if not (kindIs "map" (get $onto $key)) }}
{{- $_ := set $onto $key (dict) }}
{{- end }}
{{- include "app.layer" (dict "onto" (get $onto $key) "values" $value) }}
{{- else if not (kindIs "invalid" $value) }}
{{- $_ := set $onto $key $value }}
{{- end }}
{{- end }}
{{- end }}

{{/*
What Kubernetes would refuse, or would take and then fail at, and no schema can see, because
it compares two values: refused before anything reaches a cluster, naming the values. The
Deployment's template includes it (every render has one), so that the refusal is its own.
*/}}
{{- define "app.refusals" -}}
{{- $values := .Values }}
{{- /* A drain the kubelet cuts short is no drain: the pod must outlive its preStop pause plus gunicorn's graceful timeout. */}}
{{- $drain := add (int $values.preStopSleepSeconds) (int $values.gracefulTimeoutSeconds) }}
{{- if le (int $values.terminationGracePeriodSeconds) $drain }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds plus gracefulTimeoutSeconds (%d), or the kubelet kills requests still in flight" (int $values.terminationGracePeriodSeconds) $drain) }}
{{- end }}
{{- if and $values.autoscaling.enabled (gt (int $values.autoscaling.minReplicas) (int $values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not be above autoscaling.maxReplicas (%d)" (int $values.autoscaling.minReplicas) (int $values.autoscaling.maxReplicas)) }}
{{- end }}
{{- $requests := $values.resources.requests | default dict }}
{{- range $resource, $limit := $values.resources.limits | default dict }}
{{- $request := get $requests $resource }}
{{- if and $request (gt (include "app.quantity" $request | float64) (include "app.quantity" $limit | float64)) }}
{{- fail (printf "resources.requests.%s (%v) must not be above resources.limits.%s (%v)" $resource $request $resource $limit) }}
{{- end }}
{{- end }}
{{- $volumes := list "tmp" }}
{{- if $values.persistence.enabled }}
{{- $volumes = append $volumes "data" }}
{{- end }}
{{- range $values.extraVolumes }}
{{- if has .name $volumes }}
{{- fail (printf "extraVolumes: %q is the name of another volume of the pod (%s)" .name (join ", " $volumes)) }}
{{- end }}
{{- $volumes = append $volumes .name }}
{{- end }}
{{- range $values.extraVolumeMounts }}
{{- if not (has .name $volumes) }}
{{- fail (printf "extraVolumeMounts: %q names no volume of the pod (%s: add it to extraVolumes)" .name (join ", " $volumes)) }}
{{- end }}
{{- end }}
{{- $paths := list "/tmp" }}
{{- if $values.persistence.enabled }}
{{- $paths = append $paths $values.persistence.mountPath }}
{{- end }}
{{- range $values.extraVolumeMounts }}
{{- if has .mountPath $paths }}
{{- fail (printf "extraVolumeMounts: %q is the mount path of another mount of the container (%s)" .mountPath (join ", " $paths)) }}
{{- end }}
{{- $paths = append $paths .mountPath }}
{{- end }}
{{- $spreads := list }}
{{- range $values.topologySpreadConstraints }}
{{- $spread := list .topologyKey .whenUnsatisfiable }}
{{- if has $spread $spreads }}
{{- fail (printf "topologySpreadConstraints: two constraints of topologyKey %q and whenUnsatisfiable %s (Kubernetes takes one of each pair)" .topologyKey .whenUnsatisfiable) }}
{{- end }}
{{- $spreads = append $spreads $spread }}
{{- end }}
{{- end }}

{{/*
A Kubernetes quantity (500m, 1Gi, 2, 1e3) as a number, to compare two of them.
*/}}
{{- define "app.quantity" -}}
{{- $quantity := toString . }}
{{- $number := regexFind "^([0-9]+([.][0-9]*)?|[.][0-9]+)" $quantity }}
{{- $suffix := trimPrefix $number $quantity }}
{{- $factors := dict "" 1.0 "n" 1e-9 "u" 1e-6 "m" 1e-3 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- if hasKey $factors $suffix }}
{{- mulf ($number | float64) (get $factors $suffix) }}
{{- else }}
{{- $quantity | float64 }}
{{- end }}
{{- end }}

{{/*
The chart name, or nameOverride.
*/}}
{{- define "app.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified name of the release's objects, at most 63 characters (some Kubernetes
name fields are limited to that). A release named after the chart keeps its own name.
*/}}
{{- define "app.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "app.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "app.labels" -}}
helm.sh/chart: {{ include "app.chart" . | quote }}
{{ include "app.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- end }}

{{/*
Labels that select the release's pods (Service, PDB, anti-affinity) and its Mappings
(each Host's mappingSelector). They never change after the first install.
*/}}
{{- define "app.selectorLabels" -}}
app.kubernetes.io/name: {{ include "app.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "app.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "app.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Replicas the Deployment asks for when no HPA owns the count: a passive DR site runs its
reduced count.
*/}}
{{- define "app.replicas" -}}
{{- if and .Values.dr.enabled (eq .Values.dr.role "passive") }}
{{- .Values.dr.passiveReplicas }}
{{- else }}
{{- .Values.replicaCount }}
{{- end }}
{{- end }}

{{/*
The HPA's lower bound: at a passive DR site, the reduced count, so the site stays warm
and cheap and still scales up when traffic fails over to it.
*/}}
{{- define "app.minReplicas" -}}
{{- if and .Values.dr.enabled (eq .Values.dr.role "passive") }}
{{- min .Values.dr.passiveReplicas .Values.autoscaling.maxReplicas }}
{{- else }}
{{- .Values.autoscaling.minReplicas }}
{{- end }}
{{- end }}

{{/*
"true" when more than one pod can run at once (then a PodDisruptionBudget makes sense).
*/}}
{{- define "app.multipleReplicas" -}}
{{- if .Values.autoscaling.enabled }}
{{- gt (int .Values.autoscaling.maxReplicas) 1 }}
{{- else }}
{{- gt (int (include "app.replicas" .)) 1 }}
{{- end }}
{{- end }}

{{/*
This site's DR settings: {role, region, peerRegion, hostname, tlsSecretName}. The role picks
the site; the other one is the peer.
*/}}
{{- define "app.drSite" -}}
{{- $site := get .Values.dr.sites .Values.dr.role }}
{{- $peer := get .Values.dr.sites (ternary "passive" "active" (eq .Values.dr.role "active")) }}
{{- dict "role" .Values.dr.role "region" $site.region "peerRegion" $peer.region "hostname" $site.hostname "tlsSecretName" $site.tlsSecretName | toJson }}
{{- end }}

{{/*
Every hostname the release serves, as a list of {key, hostname, tlsSecretName}: the hosts
value (platform hostname, custom URL) and, with DR on, this site's own hostname. Entries
without a hostname (values.yaml alone sets none) serve nothing.
The key names the Host and the Mapping: <fullname>-<key>.
*/}}
{{- define "app.hosts" -}}
{{- $hosts := list }}
{{- range $key, $host := .Values.hosts }}
{{- if and $host $host.hostname }}
{{- $hosts = append $hosts (dict "key" $key "hostname" $host.hostname "tlsSecretName" $host.tlsSecretName) }}
{{- end }}
{{- end }}
{{- if .Values.dr.enabled }}
{{- $site := include "app.drSite" . | fromJson }}
{{- if $site.hostname }}
{{- $hosts = append $hosts (dict "key" "site" "hostname" $site.hostname "tlsSecretName" $site.tlsSecretName) }}
{{- end }}
{{- end }}
{{- toJson $hosts }}
{{- end }}

{{/*
Of the variables that `env` refuses (values.schema.json: LD_*, PYTHON*, GUNICORN_CMD_ARGS,
PROMETHEUS_MULTIPROC_DIR, PATH), those the chart can clear, by name, with the value the container gets:
every variable the image's Python documents (python3 --help-env) and a few more it reads, and the
dynamic loader's that load code or change how it works. The chart cannot see the
keys of the Secrets and ConfigMaps of `envFrom`, so with `envFrom` the deployment sets each of
these in `env`, which Kubernetes puts before `envFrom` for the same name: none of them comes
from a ConfigMap. Empty means unset to the dynamic loader, Python and gunicorn (GUNICORN_CMD_ARGS
adds no option); a value is the image's own (Dockerfile ENV; PATH: the venv's, then Debian's). gunicorn.conf.py sets
PROMETHEUS_MULTIPROC_DIR itself, to a directory of its own, whatever it finds. A variable that
acts by its presence alone (LD_TRACE_LOADED_OBJECTS, LD_DYNAMIC_WEAK, LD_SHOW_AUXV) cannot be
neutralised so: whoever writes the ConfigMap is trusted with those.
*/}}
{{- define "app.pinnedEnv" -}}
# Load code from outside /app: shared libraries, modules, a startup file, a breakpoint hook.
LD_PRELOAD: ""
LD_LIBRARY_PATH: ""
LD_AUDIT: ""
LD_DEBUG: ""
LD_BIND_NOW: ""
LD_BIND_NOT: ""
LD_VERBOSE: ""
LD_WARN: ""
PYTHONPATH: ""
PYTHONHOME: ""
PYTHONUSERBASE: ""
PYTHONPLATLIBDIR: ""
PYTHONPYCACHEPREFIX: ""
PYTHONSTARTUP: ""
PYTHONBREAKPOINT: ""
PYTHON_PRESITE: ""
# Change how the service runs, serves and logs.
PYTHONINSPECT: ""
PYTHONOPTIMIZE: ""
PYTHONWARNINGS: ""
PYTHONHASHSEED: ""
PYTHONINTMAXSTRDIGITS: ""
PYTHONDEVMODE: ""
PYTHONMALLOC: ""
PYTHONVERBOSE: ""
PYTHONDEBUG: ""
PYTHONIOENCODING: ""
PYTHONUTF8: ""
PYTHONCASEOK: ""
PYTHONCOERCECLOCALE: ""
PYTHONFAULTHANDLER: ""
PYTHONNODEBUGRANGES: ""
PYTHONNOUSERSITE: ""
PYTHONPERFSUPPORT: ""
PYTHON_PERF_JIT_SUPPORT: ""
PYTHONPROFILEIMPORTTIME: ""
PYTHONSAFEPATH: ""
PYTHONTRACEMALLOC: ""
PYTHONWARNDEFAULTENCODING: ""
PYTHONASYNCIODEBUG: ""
PYTHON_COLORS: ""
PYTHON_CPU_COUNT: ""
PYTHON_FROZEN_MODULES: ""
PYTHON_HISTORY: ""
PYTHON_BASIC_REPL: ""
PYTHON_GIL: ""
PYTHONUNBUFFERED: "1"
PYTHONDONTWRITEBYTECODE: "1"
GUNICORN_CMD_ARGS: ""
PROMETHEUS_MULTIPROC_DIR: ""
# Where programs are found: the image's venv, then the system's, never a mounted volume.
PATH: "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
{{- end }}
